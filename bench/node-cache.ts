/**
 * Benchmark: the node cache. On a one-node test cluster with TOIL_KUBERNETES_HOST_PATH set and the
 * AWS job store on the test S3 server, 10 jobs in turn read one 256 MiB file, with the cache on
 * and off. Prints, for each: bytes downloaded from S3 (GETs × size), the workflow's wall time,
 * and the median time of `readGlobalFile` for a download (miss) and a cache hit.
 *
 *   npm run build && npx tsx bench/node-cache.ts [--mib 256] [--jobs 10]
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SHARED_TMP, toil, workflow } from '../test/helpers/run.js';
import { startK8sEnv } from '../test/kubernetes/setup.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const mib = arg('mib', 256);
const jobs = arg('jobs', 10);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const k = await startK8sEnv({ nodes: [{ name: 'node-1', cpu: '4', memory: '16Gi' }] });
const file = path.join(SHARED_TMP, `cache-bench-${process.pid}.bin`);
try {
  await writeFile(file, Buffer.alloc(mib * 1024 * 1024, 1));
  for (const caching of [false, true]) {
    await k.s3.resetCounts();
    const t0 = performance.now();
    const r = await toil(
      [
        'run',
        workflow('../../bench/workflows/cacheRead.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--disableCaching',
        String(!caching),
        '--',
        file,
        String(jobs),
        '4',
      ],
      { env: k.env },
    );
    const seconds = (performance.now() - t0) / 1000;
    if (r.code !== 0) throw new Error(`toil run failed:\n${r.stderr}`);
    const reads = JSON.parse(r.stdout) as Array<{ ms: number; sha: string }>;
    const gets = Object.entries((await k.s3.requestCount()).gets)
      .filter(([key]) => key.endsWith(`/${path.basename(file)}`))
      .reduce((a, [, n]) => a + n, 0);
    const misses = caching ? reads.slice(0, 1) : reads;
    const hits = caching ? reads.slice(1) : [];
    console.log(
      `cache ${caching ? 'on ' : 'off'}: ${jobs} reads of ${mib} MiB, ${gets} GETs ≈ ${((gets * mib) / 1024).toFixed(2)} GiB downloaded, wall ${seconds.toFixed(1)} s; ` +
        `readGlobalFile median: download ${median(misses.map((x) => x.ms)).toFixed(0)} ms${hits.length ? `, hit ${median(hits.map((x) => x.ms)).toFixed(1)} ms` : ''}`,
    );
  }
} finally {
  await rm(file, { force: true });
  await k.stop();
}
