/**
 * Benchmark: N trivial jobs through the kubernetes batch system on the test cluster (pods are
 * local processes), with the AWS job store on the test S3 server. Prints jobs/s and the API
 * requests the cluster served, in total and per batch job, split into per-job requests
 * (create, delete, log reads) and per-workflow ones (list, watch).
 *
 *   npm run bench:k8s -- [N]
 */
import { toil, workflow } from '../test/helpers/run.js';
import { startK8sEnv } from '../test/kubernetes/setup.js';

const n = Number(process.argv[2] ?? '500');
const k = await startK8sEnv({
  nodes: [
    { name: 'node-1', cpu: '8' },
    { name: 'node-2', cpu: '8' },
  ],
});
try {
  k.cluster.resetRequestCounts();
  const t0 = performance.now();
  const r = await toil(
    [
      'run',
      workflow('../../bench/workflows/fanout.ts'),
      k.locator(),
      '--batchSystem',
      'kubernetes',
      '--defaultMemory',
      '512Mi',
      '--',
      String(n),
    ],
    { env: k.env },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`toil run failed:\n${r.stderr}`);
  const jobs = Number(/finished: (\d+) job\(s\) run/.exec(r.stderr)?.[1] ?? NaN);
  const counts = k.cluster.requestCounts();
  const batchJobs = counts['create jobs'] ?? 0;
  const perJob = (counts['create jobs'] ?? 0) + (counts['delete jobs'] ?? 0) + (counts['get pods/log'] ?? 0);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`jobs=${jobs} batch-jobs=${batchJobs} wall=${seconds.toFixed(1)}s jobs/s=${(jobs / seconds).toFixed(1)}`);
  console.log(
    `API requests: total=${total} per batch job=${(total / batchJobs).toFixed(2)} (per-job kinds: ${(perJob / batchJobs).toFixed(2)}; per-workflow: ${total - perJob})`,
  );
  console.log(JSON.stringify(counts));
} finally {
  await k.stop();
}
