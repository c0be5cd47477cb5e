/**
 * Shutdown within the grace period: a leader with many running worker Jobs, told to stop by
 * SIGTERM (as Kubernetes does when its pod is deleted) or by `toil kill`, ends them all with one
 * bulk delete before anything else, and exits well inside the 30 s a pod gets by default.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { SHARED_TMP, startToil, toil, waitFor } from '../helpers/run.js';
import { napsOnKubernetes } from '../workflows/args.js';
import { useTempStore } from '../helpers/tempStore.js';
import { nodesFor, startBusyLeader } from './busyLeader.js';
import { useK8sEnv } from './useK8sEnv.js';

const COUNT = 40;
/** Kubernetes' default terminationGracePeriodSeconds. */
const GRACE_MS = 30_000;

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv({ nodes: nodesFor(COUNT) });
beforeEach(() => {
  k.cluster.resetRequestCounts();
});

async function stopAndMeasure(stop: () => Promise<void>, done: Promise<unknown>): Promise<{ exitedMs: number }> {
  k.cluster.resetRequestCounts();
  const t0 = Date.now();
  await stop();
  await done;
  return { exitedMs: Date.now() - t0 };
}

/** The leader exited in time with the expected words, after one bulk delete and nothing one by one. */
function expectStoppedInTime(r: { stderr: string; code: number | null }, o: { exitedMs: number; says: RegExp }): void {
  expect(r.stderr).toMatch(o.says);
  expect(r.code).toBe(1);
  expect(o.exitedMs).toBeLessThan(GRACE_MS);
  expect(k.leftoverJobs()).toBe(0);
  const counts = k.cluster.requestCounts();
  expect(counts['deletecollection jobs']).toBe(1);
  expect(counts['delete jobs'] ?? 0).toBe(0);
  expect(counts['get pods/log'] ?? 0).toBe(0);
}

describe('shutdown within the grace period', () => {
  it(`SIGTERM: ${COUNT} running worker Jobs go with one bulk delete and the leader exits in time`, async () => {
    const leader = await startBusyLeader(k, { dir: t.dir, count: COUNT });
    expect(k.leftoverJobs()).toBe(COUNT);
    const { exitedMs } = await stopAndMeasure(async () => void leader.child.kill('SIGTERM'), leader.done);
    expectStoppedInTime(await leader.done, { exitedMs, says: /received SIGTERM: stopping the workflow/ });
  }, 300_000);

  it(`toil kill: ${COUNT} running worker Jobs go with one bulk delete and the leader exits in time`, async () => {
    const leader = await startBusyLeader(k, { dir: t.dir, count: COUNT });
    const { exitedMs } = await stopAndMeasure(async () => {
      const killed = await toil(['kill', leader.locator], { env: k.env });
      expect(killed.code).toBe(0);
    }, leader.done);
    expectStoppedInTime(await leader.done, { exitedMs, says: /stopped by 'toil kill'/ });
    await toil(['clean', leader.locator], { env: k.env });
  }, 300_000);

  it('SIGTERM while a Job create is under way: the bulk delete comes at once, and the Job created after it does not outlive the leader', async () => {
    // The API server takes 8 s to answer Job creates: the leader's first create is in flight
    // when SIGTERM comes, and its Job appears after the bulk delete has run.
    const slow = k.cluster.faults.delayRequests({ verb: 'create', resource: 'jobs', ms: 8000 });
    try {
      const locator = k.locator();
      const run = startToil(napsOnKubernetes(locator, { traceDir: t.dir, count: 1, napMs: 60_000 }), { env: k.env });
      await waitFor(() => (k.cluster.requestCounts()['create jobs'] ?? 0) >= 1, 60_000, 'the first Job create');
      k.cluster.resetRequestCounts();
      run.child.kill('SIGTERM');
      await waitFor(() => (k.cluster.requestCounts()['deletecollection jobs'] ?? 0) >= 1, 3000, 'the bulk delete, within 3 s of SIGTERM');
      const r = await run.done;
      expect(r.code).toBe(1);
      // Past the create's answer: nothing of the workflow is left.
      expect(k.cluster.requestCounts()['create jobs'] ?? 0).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(k.leftoverJobs()).toBe(0);
      await toil(['clean', locator], { env: k.env });
    } finally {
      slow.remove();
    }
  }, 120_000);
});
