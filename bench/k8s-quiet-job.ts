/**
 * Benchmark: the API requests of a workflow whose only job runs for a long time, on the test
 * cluster with a real server's watch timing (bookmarks once a minute, watches ended by the
 * server at their timeoutSeconds). A quiet watch must neither be cut and re-listed nor polled:
 * the figures should stay flat as the job gets longer. Prints list, watch and total requests.
 *
 *   npm run build && npx tsx bench/k8s-quiet-job.ts [minutes, default 10]
 */
import { toil, workflow } from '../test/helpers/run.js';
import { startK8sEnv } from '../test/kubernetes/setup.js';

const minutes = Number(process.argv[2] ?? '10');
if (!Number.isFinite(minutes) || minutes <= 0) {
  console.error(`minutes must be a positive number, got '${process.argv[2]}'`);
  process.exit(2);
}
const k = await startK8sEnv({ nodes: [{ name: 'node-1' }] });
try {
  k.cluster.resetRequestCounts();
  const t0 = performance.now();
  const r = await toil(
    [
      'run',
      workflow('../../bench/workflows/quiet.ts'),
      k.locator(),
      '--batchSystem',
      'kubernetes',
      '--',
      String(Math.round(minutes * 60_000)),
    ],
    { env: k.env },
  );
  const seconds = (performance.now() - t0) / 1000;
  if (r.code !== 0) throw new Error(`toil run failed:\n${r.stderr}`);
  const counts = k.cluster.requestCounts();
  const sum = (verb: string): number =>
    Object.entries(counts)
      .filter(([key]) => key.startsWith(`${verb} `))
      .reduce((a, [, n]) => a + n, 0);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  console.log(`job=${minutes} min wall=${seconds.toFixed(0)}s`);
  console.log(`list requests=${sum('list')} watch requests=${sum('watch')} total API calls=${total}`);
  console.log(JSON.stringify(counts));
} finally {
  await k.stop();
}
