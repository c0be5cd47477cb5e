/**
 * Benchmark: the product as users meet it. Builds (or finds) the toil-ts image, then on the test
 * cluster (pods run inside the image's root file system) with the test S3 server as the job
 * store, runs `kubectl apply -f manifests/leader-job.yaml` N times and prints: image size, build
 * time, time from `kubectl apply` to the leader Job's Complete condition, and the leader's peak
 * RSS (from its own last log line). `--cold` removes the cached images first (a full rebuild,
 * base image included).
 *
 *   npx tsx bench/leader-job.ts [N] [--cold]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestCluster } from '@toil-ts/testbed/cluster';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { ROOT } from '../test/helpers/run.js';
import { createS3Secret } from '../test/kubernetes/setup.js';
import { ensureToilImage, imageSize, runCommand, STORAGE_ARGS } from '@toil-ts/testbed/images';
import { startTestS3 } from '@toil-ts/testbed/s3';

const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? '5');
const cold = process.argv.includes('--cold');
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function removeCachedImages(): Promise<void> {
  const listing = await runCommand('buildah', [...STORAGE_ARGS, 'images', '--format', '{{.Name}}:{{.Tag}}']);
  const ours = listing.stdout.split('\n').filter((n) => /^localhost\/toil-ts(-base)?:|node:22-bookworm-slim$/.test(n));
  for (const n of ours) await runCommand('buildah', [...STORAGE_ARGS, 'rmi', '--force', n]);
}

if (cold) await removeCachedImages();
const built = await ensureToilImage((l) => process.stderr.write(`image: ${l}\n`));
const warm = await ensureToilImage();
console.log(`image ${built.name}: ${await imageSize(built.name)} (base ${await imageSize(built.base.name)})`);
console.log(
  `build: base ${built.base.built ? `${built.base.seconds.toFixed(0)} s` : 'cached'}, image ${built.built ? `${built.seconds.toFixed(0)} s` : 'cached'}; warm check ${warm.seconds.toFixed(1)} s`,
);

const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-bench-leader-'));
const [cluster, s3] = await Promise.all([
  startTestCluster({ containerImages: { storageDriver: 'vfs' } }),
  startTestS3({ conditionalWrites: true }),
]);
try {
  await createS3Secret(cluster.kubeconfigPath, { dir, endpoint: s3.endpoint });
  const seconds: number[] = [];
  const rss: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', path.join(ROOT, 'manifests', 'leader-job.yaml')]);
    if (applied.code !== 0) throw new Error(applied.stderr);
    const waited = await kubectl(cluster.kubeconfigPath, ['wait', '--for=condition=Complete', '--timeout=120s', 'job/toil-leader']);
    if (waited.code !== 0) throw new Error(`the leader Job did not complete: ${waited.stderr}`);
    seconds.push((performance.now() - t0) / 1000);
    const logs = (await kubectl(cluster.kubeconfigPath, ['logs', 'job/toil-leader'])).stdout;
    rss.push(Number(/leader peak RSS (\d+) MiB/.exec(logs)?.[1] ?? NaN));
    await kubectl(cluster.kubeconfigPath, ['delete', 'job', 'toil-leader', '--wait=true']);
  }
  console.log(
    `kubectl apply → Complete (hello world, ${runs} runs): median ${median(seconds).toFixed(1)} s (${Math.min(...seconds).toFixed(1)}–${Math.max(...seconds).toFixed(1)})`,
  );
  console.log(`leader peak RSS: median ${median(rss)} MiB (${Math.min(...rss)}–${Math.max(...rss)})`);
} finally {
  await Promise.all([cluster.stop(), s3.stop()]);
  await rm(dir, { recursive: true, force: true });
}
