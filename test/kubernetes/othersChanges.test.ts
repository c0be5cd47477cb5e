/**
 * The kubernetes batch system on a test cluster that behaves as a real one where it matters
 * here: a real server's watch timing (periodic bookmarks, watches ended by the server), and
 * objects changed by someone else arriving as the real server sends them (`kubectl delete job`).
 * Bookmarks come every 10 s instead of a real server's minute, so that a 25 s job sees two of
 * them and two server-ended watches.
 */
import { describe, expect, it } from '@jest/globals';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { startToil, toil, waitFor, workflow, type RunResult } from '../helpers/run.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';
import { useK8sEnv } from './useK8sEnv.js';

const k = useK8sEnv({ bookmarkIntervalMs: 10_000 });
const QUIET = workflow('../../bench/workflows/quiet.ts');

type Meta = { metadata: { name: string; labels?: Record<string, string> }; status?: { phase?: string } };

/** The running worker pod's Job name, once there is one. */
async function runningWorkerJob(): Promise<string> {
  let job = '';
  await waitFor(
    () => {
      const pod = (k.cluster.list('pods') as unknown as Meta[]).find(
        (p) => p.metadata.labels?.[LABEL_MANAGED_BY] === MANAGED_BY && p.status?.phase === 'Running',
      );
      job = pod?.metadata.labels?.['job-name'] ?? '';
      return job !== '';
    },
    60_000,
    'a running worker pod',
  );
  return job;
}

/** The run's result, or a failure saying it hung (the run is then killed). */
async function endsWithin(run: ReturnType<typeof startToil>, ms: number): Promise<RunResult> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill('SIGKILL');
      reject(new Error(`the workflow did not end within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([run.done, hung]);
  } finally {
    clearTimeout(timer);
  }
}

function listsAndWatches(): { lists: number; watches: number } {
  const c = k.cluster.requestCounts();
  return {
    lists: (c['list jobs'] ?? 0) + (c['list pods'] ?? 0),
    watches: (c['watch jobs'] ?? 0) + (c['watch pods'] ?? 0),
  };
}

describe('real watch timing', () => {
  it('a long quiet job makes no more list requests than a short one, across server-ended watches', async () => {
    k.cluster.resetRequestCounts();
    const short = await toil(['run', QUIET, k.locator(), '--batchSystem', 'kubernetes', '--', '1000'], { env: k.env });
    expect(short.code).toBe(0);
    const baseline = listsAndWatches();

    k.cluster.resetRequestCounts();
    const run = startToil(['run', QUIET, k.locator(), '--batchSystem', 'kubernetes', '--', '12000'], { env: k.env });
    await runningWorkerJob();
    // two clean ends of every watch, as a server ends them at their timeoutSeconds
    for (const at of [4_000, 8_000]) setTimeout(() => k.cluster.faults.dropWatches(), at).unref();
    const r = await endsWithin(run, 120_000);
    expect(r.code).toBe(0);
    const long = listsAndWatches();
    expect(long.lists).toBe(baseline.lists);
    expect(long.watches).toBe(baseline.watches + 4);
  }, 240_000);
});

describe('changes by someone else', () => {
  it('a worker Job deleted with kubectl fails its job with a message saying so, without a hang', async () => {
    const run = startToil(['run', QUIET, k.locator(), '--batchSystem', 'kubernetes', '--retryCount', '0', '--', '300000'], {
      env: k.env,
    });
    const job = await runningWorkerJob();
    const deleted = await kubectl(k.cluster.kubeconfigPath, ['delete', 'job', job]);
    expect(deleted.stdout).toMatch(`job.batch "${job}" deleted`);
    const r = await endsWithin(run, 90_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(`worker Job ${job} was deleted by someone else`);
    expect(k.leftoverJobs()).toBe(0);
    await waitFor(() => k.leftoverPods() === 0, 60_000, 'the worker pod to go');
  }, 200_000);
});
