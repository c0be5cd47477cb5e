/**
 * Benchmark: trivial jobs through the kubernetes batch system on the test cluster (pods are
 * local processes), with the AWS job store on the test S3 server, in both modes side by side in
 * one run: a pod per job, and executor pods (--kubernetesExecutors). For each it prints jobs/s
 * (of the N children alone, from 10% to 90% of all the jobs done, and over the whole run),
 * the API requests the cluster served (in total, per job and by kind) and the job store's
 * requests (every S3 request the test server saw, leader's and workers': per job and by
 * operation).
 *
 *   npm run bench:k8s -- [N per pod] [N on executors] [seconds each job sleeps]
 *   npm run bench:k8s -- 100 1000        # trivial jobs: 100 a pod each, 1000 on executors
 *   npm run bench:k8s -- 100 100 20      # 100 jobs of 20 s each, both ways
 *   BENCH_LOG=/tmp/k8s npm run bench:k8s # each run's leader log (--logDebug) in /tmp/k8s-<mode>.log
 *   TOIL_BENCH_ARGS='--kubernetesExecutorMax 4' npm run bench:k8s   # more toil run options, both modes
 *   BENCH_LEADER_NODE_OPTIONS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench:k8s   # the leader's Node options
 */
import { writeFile } from 'node:fs/promises';
import { toil, workflow } from '../test/helpers/run.js';
import { startK8sEnv, type K8sEnv } from '../test/kubernetes/setup.js';

const perPod = Number(process.argv[2] ?? '100');
const onExecutors = Number(process.argv[3] ?? '1000');
const sleepSeconds = Number(process.argv[4] ?? '0');

/** When the count of jobs done reached each number, interpolated between the status lines. */
function doneTimes(stderr: string): (n: number) => number {
  const points: Array<{ t: number; done: number }> = [];
  for (const m of stderr.matchAll(/^\[(\d\d):(\d\d):(\d\d\.\d+)\] INFO {4}jobs: (\d+) done/gm)) {
    points.push({ t: Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]), done: Number(m[4]) });
  }
  return (n) => {
    const i = points.findIndex((p) => p.done >= n);
    if (i <= 0) return NaN;
    const a = points[i - 1]!;
    const b = points[i]!;
    return a.t + ((b.t - a.t) * (n - a.done)) / Math.max(1, b.done - a.done);
  };
}

/**
 * Jobs per second of the run's parts, from the status lines (a quarter of a second apart):
 * `children` — the N children alone, from the fan-out job's end (1 done) to the last child's end
 * (N + 1 done), without the leader's start, the fan-out job writing their records and the
 * follow-on reading their values; `middle` — from 10% to 90% of all the jobs done.
 */
function rates(stderr: string, jobs: number): { children: number; middle: number } {
  const at = doneTimes(stderr);
  const n = jobs - 2;
  return { children: n / (at(n + 1) - at(1)), middle: (0.8 * jobs) / (at(0.9 * jobs) - at(0.1 * jobs)) };
}

async function measure(k: K8sEnv, mode: 'pod per job' | 'executors', n: number): Promise<void> {
  k.cluster.resetRequestCounts();
  await k.s3.resetCounts();
  const t0 = performance.now();
  const r = await toil(
    [
      'run',
      workflow('../../bench/workflows/fanout.ts'),
      k.locator(),
      '--batchSystem',
      'kubernetes',
      '--kubernetesExecutors',
      String(mode === 'executors'),
      '--defaultMemory',
      '512Mi',
      '--defaultCores',
      '0.5',
      '--statusInterval',
      '0.25',
      ...(process.env['BENCH_LOG'] ? ['--logDebug'] : []),
      ...(process.env['TOIL_BENCH_ARGS'] ?? '').split(/\s+/).filter(Boolean),
      '--',
      String(n),
      String(sleepSeconds),
    ],
    { env: { ...k.env, ...(process.env['BENCH_LEADER_NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['BENCH_LEADER_NODE_OPTIONS'] } : {}) } },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (process.env['BENCH_LOG']) await writeFile(`${process.env['BENCH_LOG']}-${mode.replace(/ /g, '-')}.log`, r.stderr);
  if (r.code !== 0) throw new Error(`toil run failed:\n${r.stderr}`);
  const jobs = Number(/finished: (\d+) job\(s\) run/.exec(r.stderr)?.[1] ?? NaN);
  const rate = rates(r.stderr, jobs);
  const counts = k.cluster.requestCounts();
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const store = await k.s3.requestCount();
  console.log(
    `${mode.padEnd(11)}  jobs=${jobs}  jobs/s: the ${jobs - 2} children=${rate.children.toFixed(1)}, 10% to 90% done=${rate.middle.toFixed(1)}  worker Jobs=${counts['create jobs'] ?? 0}  wall=${seconds.toFixed(1)}s  jobs/s=${(jobs / seconds).toFixed(1)}  ` +
      `API requests/job=${(total / jobs).toFixed(3)} (${total})  job store requests/job=${(store.total / jobs).toFixed(1)}`,
  );
  console.log(`             API: ${JSON.stringify(counts)}`);
  console.log(`             job store: ${JSON.stringify(store.byOp)}`);
}

const k = await startK8sEnv({
  nodes: [
    { name: 'node-1', cpu: '8' },
    { name: 'node-2', cpu: '8' },
  ],
});
try {
  console.log(`${sleepSeconds > 0 ? `jobs of ${sleepSeconds} s` : 'trivial jobs'} (fan-out: N + 2 jobs), 2 nodes of 8 CPUs`);
  await measure(k, 'pod per job', perPod);
  await measure(k, 'executors', onExecutors);
} finally {
  await k.stop();
}
