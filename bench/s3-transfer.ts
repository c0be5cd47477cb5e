/**
 * Benchmark: a 1 GiB file up to S3 and back through the AWS job store (writeFile/readFile), and
 * the same transfer done directly with @aws-sdk/lib-storage (Upload) and GetObject, on the same
 * test S3 server in the same run. Each side runs in its own process so its peak RSS is its own.
 *
 *   npx tsx bench/s3-transfer.ts [--size-mib 1024] [--rounds 3]
 *
 * (Node ≥ 22.18 runs the TypeScript sources directly; the register hook maps `.js` imports to
 * the `.ts` files.) Defaults: 1024 MiB, 3 rounds, the median reported. Part size and parallel parts are the job store's defaults (16 MiB × 4, or
 * TOIL_S3_PART_SIZE / TOIL_S3_PARALLEL_PARTS); the direct transfer uses the same.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { AwsJobStore } from '../src/jobstore/aws/awsJobStore.js';
import { parseLocator } from '../src/jobstore/locator.js';
import { makeS3Client, s3SettingsFromEnv } from '../src/jobstore/aws/s3Client.js';
import { startTestS3, useTestS3Env } from '@toil-ts/testbed/s3';

const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(self), '..');

interface PhaseResult {
  uploadSeconds: number;
  downloadSeconds: number;
  maxRssBytes: number;
  /** RSS before the transfers, and its peaks (sampled every 10 ms) during upload and download. */
  baseRssBytes: number;
  uploadRssBytes: number;
  downloadRssBytes: number;
  bytes: number;
  md5: string;
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

async function md5File(p: string): Promise<string> {
  const h = createHash('md5');
  for await (const c of createReadStream(p, { highWaterMark: 4 * MiB })) h.update(c as Buffer);
  return h.digest('hex');
}

/** Downloads per upload: the median is kept (reads vary more than writes on the test server). */
const DOWNLOADS = 3;

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

async function medianOf(n: number, f: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push((performance.now() - t) / 1000);
  }
  return median(times);
}

/** One side of the benchmark, in a child process: upload `src`, download it to `dst`. */
async function phase(kind: 'direct' | 'store', src: string, dst: string, tag: string): Promise<PhaseResult> {
  const settings = s3SettingsFromEnv('us-east-1');
  const size = (await stat(src)).size;
  let up: number;
  let down: number;
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  const peakSince = (): number => {
    const p = Math.max(peak, process.memoryUsage().rss);
    peak = 0;
    return p;
  };
  let upRss = 0;
  if (kind === 'direct') {
    const client = makeS3Client(settings);
    const bucket = `bench-direct-${tag}`;
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const t = performance.now();
    await new Upload({
      client,
      partSize: settings.partSize,
      queueSize: settings.queueSize,
      params: { Bucket: bucket, Key: 'big.bin', Body: createReadStream(src, { highWaterMark: MiB }) },
    }).done();
    up = (performance.now() - t) / 1000;
    upRss = peakSince();
    down = await medianOf(DOWNLOADS, async () => {
      const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'big.bin' }));
      await pipeline(out.Body as Readable, createWriteStream(dst));
    });
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'big.bin' }));
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } else {
    const loc = parseLocator(`aws:us-east-1:bench-store-${tag}`);
    if (loc.kind !== 'aws') throw new Error('not aws');
    const store = new AwsJobStore(loc);
    await store.create();
    const t = performance.now();
    const id = await store.writeFile(src);
    up = (performance.now() - t) / 1000;
    upRss = peakSince();
    down = await medianOf(DOWNLOADS, () => store.readFile(id, dst));
    await store.destroy();
  }
  const got = (await stat(dst)).size;
  if (got !== size) throw new Error(`${kind}: downloaded ${got} bytes, expected ${size}`);
  const downRss = peakSince();
  clearInterval(sampler);
  return {
    uploadSeconds: up,
    downloadSeconds: down,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    baseRssBytes: base,
    uploadRssBytes: upRss,
    downloadRssBytes: downRss,
    bytes: size,
    md5: '',
  };
}

function runPhase(kind: 'direct' | 'store', src: string, dst: string, tag: string): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', self, '--phase', kind, '--src', src, '--dst', dst, '--tag', tag], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${kind} phase exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as PhaseResult);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

async function makeSource(p: string, bytes: number): Promise<string> {
  const fh = await open(p, 'w');
  const h = createHash('md5');
  const block = Buffer.alloc(4 * MiB);
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  try {
    for (let off = 0, n = 0; off < bytes; off += block.length, n++) {
      block.writeUInt32LE(n, 0); // every block distinct
      const part = block.subarray(0, Math.min(block.length, bytes - off));
      h.update(part);
      await fh.write(part);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const mb = (bytes: number, s: number): number => bytes / 1e6 / s;

async function main(): Promise<void> {
  const p = arg('--phase', '');
  if (p === 'direct' || p === 'store') {
    const r = await phase(p, arg('--src', ''), arg('--dst', ''), arg('--tag', 'x'));
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const sizeMiB = Number(arg('--size-mib', '1024'));
  const rounds = Number(arg('--rounds', '3'));
  // Memory-backed files when there is room (/dev/shm), so disk write-back does not swamp the
  // difference being measured; --dir to choose.
  const parent = arg(
    '--dir',
    await stat('/dev/shm').then(
      () => '/dev/shm',
      () => os.tmpdir(),
    ),
  );
  const dir = await mkdtemp(path.join(parent, 'toil-bench-s3-'));
  const s3 = await startTestS3({ conditionalWrites: true, parentDir: parent });
  useTestS3Env(s3);
  try {
    const src = path.join(dir, 'source.bin');
    const srcMd5 = await makeSource(src, sizeMiB * MiB);
    const settings = s3SettingsFromEnv('us-east-1');
    const load = (): string =>
      os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ');
    console.log(
      `test S3 server ${s3.endpoint} (s3rver in its own process, data in ${parent}); file ${sizeMiB} MiB; part size ${settings.partSize / MiB} MiB × ${settings.queueSize} parallel parts; ${os.cpus().length} CPUs; load average ${load()}`,
    );
    const results: Record<'direct' | 'store', PhaseResult[]> = { direct: [], store: [] };
    for (let r = 0; r < rounds; r++) {
      for (const kind of r % 2 === 0 ? (['direct', 'store'] as const) : (['store', 'direct'] as const)) {
        const dst = path.join(dir, `${kind}.out`);
        const res = await runPhase(kind, src, dst, `${r}-${process.pid}`);
        if (kind === 'store') {
          const m = await md5File(dst);
          if (m !== srcMd5) throw new Error('the job store returned different bytes');
        }
        await rm(dst, { force: true });
        results[kind].push(res);
        const m = (b: number): string => (b / MiB).toFixed(0);
        console.log(
          `round ${r + 1} ${kind.padEnd(6)} upload ${mb(res.bytes, res.uploadSeconds).toFixed(1).padStart(6)} MB/s  download ${mb(res.bytes, res.downloadSeconds).toFixed(1).padStart(6)} MB/s  peak RSS ${m(res.maxRssBytes)} MiB (at start ${m(res.baseRssBytes)}, uploading ${m(res.uploadRssBytes)}, downloading ${m(res.downloadRssBytes)})`,
        );
      }
    }
    // The median round: the test server's speed varies a lot from one transfer to the next.
    const best = (xs: PhaseResult[], f: (x: PhaseResult) => number): number => median(xs.map(f));
    const bytes = sizeMiB * MiB;
    const du = mb(
      bytes,
      best(results.direct, (x) => x.uploadSeconds),
    );
    const dd = mb(
      bytes,
      best(results.direct, (x) => x.downloadSeconds),
    );
    const su = mb(
      bytes,
      best(results.store, (x) => x.uploadSeconds),
    );
    const sd = mb(
      bytes,
      best(results.store, (x) => x.downloadSeconds),
    );
    const rss = (xs: PhaseResult[]): number => Math.max(...xs.map((x) => x.maxRssBytes)) / MiB;
    console.log('');
    console.log(`                 upload MB/s   download MB/s   peak RSS`);
    console.log(
      `direct (SDK)     ${du.toFixed(1).padStart(11)}   ${dd.toFixed(1).padStart(13)}   ${rss(results.direct).toFixed(0).padStart(5)} MiB`,
    );
    console.log(
      `job store        ${su.toFixed(1).padStart(11)}   ${sd.toFixed(1).padStart(13)}   ${rss(results.store).toFixed(0).padStart(5)} MiB`,
    );
    console.log(`ratio            ${(su / du).toFixed(2).padStart(11)}   ${(sd / dd).toFixed(2).padStart(13)}`);
    console.log(`load average at the end: ${load()} (other work on the machine skews the figures)`);
    console.log(
      `(median of ${rounds} rounds, each with one upload and the median of ${DOWNLOADS} downloads; memory bound for uploads ≈ part size × (parallel parts + 1) = ${((settings.partSize * (settings.queueSize + 1)) / MiB).toFixed(0)} MiB plus the runtime; file ${sizeMiB} MiB)`,
    );
  } finally {
    await s3.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
