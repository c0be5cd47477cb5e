/**
 * The safety net under a lost completion: the test cluster's Job controller never records the
 * worker Job's ending (not in a watch event, not in a list), while its pod runs to the end and
 * the worker commits. The leader finds the job done in the job store at its reconciliations and
 * finishes, saying so, instead of waiting forever.
 */
import { describe, expect, it } from '@jest/globals';
import { startToil, workflow } from '../helpers/run.js';
import { ANNOTATION_JOB_NAME } from '../../src/batch/kubernetesSpec.js';
import { useK8sEnv } from './useK8sEnv.js';

const k = useK8sEnv();

describe('a completion the cluster never shows', () => {
  it('is found in the job store within the reconcile period, and the workflow finishes', async () => {
    await k.cluster.faults.loseJobEndings({ [ANNOTATION_JOB_NAME]: 'hello' });
    const t0 = Date.now();
    const run = startToil(
      [
        'run',
        workflow('../../examples/helloworld.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--reconcileInterval',
        '5',
        '--',
        'Lost',
      ],
      { env: k.env },
    );
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 90_000)));
    const r = await Promise.race([run.done, hung]);
    clearTimeout(timer);
    if (r === 'hung') {
      run.child.kill('SIGTERM');
      throw new Error(`the leader waited for the lost completion for 90 s:\n${(await run.done).stderr}`);
    }
    expect(r.stderr).toMatch(
      /job 'hello' \([^)]+\) is done in the job store, but its batch job 1 \(issued \d+s ago\) has not said it ended; taking it as done and ending the batch job/,
    );
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('"Hello, Lost"');
    // two reconciliations of 5 s after the job was issued, and the start: well under a minute
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(k.leftoverJobs()).toBe(0);
  }, 150_000);
});
