/**
 * Executor pods on the test cluster, through the real CLI: executors are worker Jobs whose pods
 * run `toil worker --executor`, the job store is the AWS job store on a test S3 server. What
 * executor mode does on any batch system is test/engine/executors.test.ts's; here, what only a
 * cluster does: a pod deleted under its jobs, Jobs per executor rather than per job, and a job no
 * executor shape takes.
 */
import { describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { SHARED_TMP, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useK8sEnv } from './useK8sEnv.js';
import { ANNOTATION_JOB_NAME } from '../../src/batch/kubernetesSpec.js';

const t = useTempStore(SHARED_TMP);
// Room for an executor made while the pods of a test before are still going.
const k = useK8sEnv({ nodes: [{ name: 'node-1', cpu: '8' }] });
const EXECUTORS = ['--batchSystem', 'kubernetes', '--kubernetesExecutors'];

type Pod = { metadata?: { name?: string; annotations?: Record<string, string> }; status?: { phase?: string } };

describe('executor pods', () => {
  it('runs a fan-out on a few executor Jobs, not a Job per job, and leaves none', async () => {
    k.cluster.resetRequestCounts();
    const r = await toil(['run', workflow('../../examples/fanout.ts'), k.locator(), ...EXECUTORS, '--defaultCores', '0.5', '--', '40'], {
      env: k.env,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(Array.from({ length: 40 }, (_, i) => i * i).reduce((a, b) => a + b));
    const creates = k.cluster.requestCounts()['create jobs'] ?? 0;
    expect(creates).toBeGreaterThanOrEqual(1);
    expect(creates).toBeLessThanOrEqual(6);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);

  it('re-runs the three jobs of a deleted executor pod, none charged a try', async () => {
    const run = startToil(['run', workflow('executors.ts'), k.locator(), ...EXECUTORS, '--retryCount', '0', '--', 'lose', t.dir], {
      env: k.env,
    });
    const starts = async (n: number) => (await traceLines(t.dir)).filter((l) => l.startsWith('start ') && l.split(' ')[2] === String(n));
    await waitFor(async () => (await starts(1)).length === 3, 90_000, 'three jobs started on an executor');
    const pods = (k.cluster.list('pods') as Pod[]).filter(
      (p) => p.status?.phase === 'Running' && p.metadata?.annotations?.[ANNOTATION_JOB_NAME] === 'executor',
    );
    expect(pods).toHaveLength(1);
    const deleted = await kubectl(k.cluster.kubeconfigPath, ['delete', 'pod', pods[0]!.metadata!.name!, '--wait=false']);
    expect(deleted.code).toBe(0);
    await waitFor(async () => (await starts(2)).length === 3, 90_000, 'the three jobs started again').catch(async (e: unknown) => {
      run.child.kill('SIGTERM');
      throw new Error(`${String(e)}; the leader said:\n${(await run.done).stderr}`);
    });
    await writeFile(path.join(t.dir, 'go'), '');
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stderr.match(/its executor \S+ ended .*; not counted against its tries/g)).toHaveLength(3);
    for (const w of ['w1', 'w2', 'w3']) expect(await t.count(w)).toBe(2);
    expect(k.leftoverJobs()).toBe(0);
  }, 240_000);

  it('kills a job over its memory alone, and fails a job that calls process.exit alone; the neighbours finish', async () => {
    const memory = await toil(['run', workflow('executors.ts'), k.locator(), ...EXECUTORS, '--retryCount', '0', '--', 'memory', t.dir], {
      env: k.env,
    });
    expect(memory.code).toBe(1);
    expect(memory.stderr).toMatch(
      /job 'hog' \(hog-[a-z0-9]+\): the job used [\d.]+ [MG]iB of memory, over the 256 MiB it asked for, and was killed \(alone/,
    );
    expect(memory.stderr).toMatch(/1 job\(s\) failed/);
    expect([await t.count('n1'), await t.count('n2')]).toEqual([1, 1]);
    const crash = await toil(
      ['run', workflow('crash.ts'), k.locator(), ...EXECUTORS, '--defaultCores', '0.5', '--retryCount', '0', '--', t.dir],
      {
        env: k.env,
      },
    );
    expect(crash.code).toBe(1);
    expect(crash.stderr).toMatch(/job 'exiter'.*: the job called process\.exit\(7\)/);
    expect(crash.stderr).toMatch(/2 job\(s\) failed/);
    expect(k.leftoverJobs()).toBe(0);
  }, 240_000);

  it('shrinks the pool to none while nothing runs, and grows it again', async () => {
    const run = startToil(
      [
        'run',
        workflow('executors.ts'),
        k.locator(),
        ...EXECUTORS,
        '--logDebug',
        '--retryBackoff',
        '12',
        '--kubernetesExecutorIdle',
        '1',
        '--',
        'retry',
        t.dir,
      ],
      { env: k.env },
    );
    const timer = setTimeout(() => run.child.kill('SIGTERM'), 120_000);
    const r = await run.done;
    clearTimeout(timer);
    const lines = r.stderr.split('\n');
    const at = (re: RegExp, from = 0) => lines.findIndex((l, i) => i >= from && re.test(l));
    const stopped = at(/executor \S+: idle, told to stop/);
    const gone = at(/executor \S+ ended \(succeeded/, stopped);
    const regrown = at(/executor \S+: \d+ slot\(s\) of/, at(/job 'flaky'.*failed: .*retrying in/));
    // One executor, told to stop and gone while the retry waited; then a new one for the retry.
    const seen = { code: r.code, stopped: stopped >= 0, gone: gone >= 0, regrownAfter: regrown > gone };
    if (!(seen.code === 0 && seen.stopped && seen.gone && seen.regrownAfter))
      throw new Error(`${JSON.stringify(seen)}; the leader said:\n${r.stderr}`);
    expect(lines.slice(0, regrown).filter((l) => /executor \S+: \d+ slot\(s\) of/.test(l))).toHaveLength(1);
  }, 180_000);

  it('runs a job no executor shape takes in a pod of its own', async () => {
    k.cluster.resetRequestCounts();
    const r = await toil(
      [
        'run',
        workflow('chain.ts'),
        k.locator(),
        ...EXECUTORS,
        '--kubernetesExecutorCores',
        '1',
        '--defaultCores',
        '2',
        '--logDebug',
        '--',
        '1',
      ],
      { env: k.env },
    );
    expect(r.code).toBe(0);
    // The job asks for 2 cores, more than an executor may have: one worker Job, and no executor made.
    expect(k.cluster.requestCounts()['create jobs']).toBe(1);
    expect(r.stderr).toMatch(/issued job 'link'/);
    expect(r.stderr).not.toMatch(/executor \S+: \d+ slot/);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);
});
