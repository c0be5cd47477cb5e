/**
 * Benchmark: a leader with N running worker Jobs gets SIGTERM. Prints the time from the signal
 * until all of the workflow's Jobs are gone, until the leader exits, the pods still there then
 * (terminating) and the API requests made during the shutdown. Pods are cheap here (every nap
 * pod sleeps; test/kubernetes/busyLeader.ts), the job store is the AWS job store on the test S3
 * server. Kubernetes gives a pod 30 s (terminationGracePeriodSeconds) after SIGTERM.
 *
 *   npm run build && npx tsx bench/k8s-shutdown.ts [N, default 200]
 */
import { SHARED_TMP, tempDir } from '../test/helpers/run.js';
import { nodesFor, startBusyLeader } from '../test/kubernetes/busyLeader.js';
import { startK8sEnv } from '../test/kubernetes/setup.js';

const n = Number(process.argv[2] ?? '200');
const k = await startK8sEnv({ nodes: nodesFor(n) });
const t = await tempDir('toil-bench-', SHARED_TMP);
try {
  const startedAt = performance.now();
  const leader = await startBusyLeader(k, { dir: t.dir, count: n, waitMs: 600_000 });
  console.log(`${n} worker Jobs running after ${((performance.now() - startedAt) / 1000).toFixed(1)} s; sending SIGTERM`);
  k.cluster.resetRequestCounts();
  const t0 = performance.now();
  let exitedAt: number | undefined;
  void leader.done.then(() => (exitedAt = performance.now()));
  leader.child.kill('SIGTERM');
  let jobsGoneAt: number | undefined;
  let podsAtExit: number | undefined;
  while (jobsGoneAt === undefined || exitedAt === undefined) {
    if (jobsGoneAt === undefined && k.leftoverJobs() === 0) jobsGoneAt = performance.now();
    if (exitedAt !== undefined && podsAtExit === undefined) podsAtExit = k.leftoverPods();
    if (performance.now() - t0 > 120_000) throw new Error('nothing happened within 120 s of SIGTERM');
    await new Promise((r) => setTimeout(r, 10));
  }
  const r = await leader.done;
  const counts = k.cluster.requestCounts();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const s = (at: number): string => `${((at - t0) / 1000).toFixed(2)} s`;
  console.log(`k8s-shutdown: ${n} running worker Jobs, SIGTERM to the leader (exit code ${r.code})`);
  console.log(`  all Jobs gone after  ${s(jobsGoneAt)}`);
  console.log(`  leader exited after  ${s(exitedAt)} (${podsAtExit ?? 0} pods still terminating then)`);
  console.log(`  API requests during shutdown: ${total} ${JSON.stringify(counts)}`);
} finally {
  await k.stop();
  await t.cleanup();
}
