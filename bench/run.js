#!/usr/bin/env node
/**
 * Engine benchmarks on the embedded default (file job store, single_machine batch system).
 * Each runs the real CLI in a fresh job store and prints jobs/s, wall time and the leader's
 * peak RSS and heap (as the leader reports them). Method: one warm-up run is not done on
 * purpose — what a user sees on the first run is what is measured; run it several times and
 * take the median.
 *
 * The rate is also printed as the run goes, at 10k, 100k and 1M jobs done: the jobs per second
 * over the second half of the way there (from 5k to 10k jobs, …), from the leader's status
 * lines (every 2 s), so that a rate that sags as the workflow grows shows.
 *
 *   npm run bench                      # both, default sizes
 *   node bench/run.js fanout 2000      # one, with a size
 *   node bench/run.js tree 100
 *   NODE_OPTIONS=--max-old-space-size=1024 node bench/run.js tree 1000   # a million jobs, heap capped
 *   TOIL_BENCH_ARGS='--leaseSeconds 600' node bench/run.js tree 501       # with more leader options
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'toil.js');

const MILESTONES = [10_000, 100_000, 1_000_000];
/** More `toil run` options for every run, e.g. TOIL_BENCH_ARGS='--leaseSeconds 600' (the same for each side of a comparison). */
const EXTRA_ARGS = (process.env.TOIL_BENCH_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Follows the leader's status lines and prints the rate at each milestone it passes. */
function rateWatch(started) {
  const seen = [{ t: 0, done: 0 }];
  let next = 0;
  let partial = '';
  const at = (n) => {
    const i = seen.findIndex((p) => p.done >= n);
    const a = seen[i - 1] ?? seen[0];
    const b = seen[i];
    return a.t + ((b.t - a.t) * (n - a.done)) / Math.max(1, b.done - a.done);
  };
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      const m = /jobs: (\d+) done/.exec(line);
      if (!m) continue;
      seen.push({ t: Number(process.hrtime.bigint() - started) / 1e9, done: Number(m[1]) });
      while (next < MILESTONES.length && Number(m[1]) >= MILESTONES[next]) {
        const n = MILESTONES[next++];
        const rate = n / 2 / (at(n) - at(n / 2));
        console.log(
          `  at ${String(n).padStart(7)} jobs done: ${rate.toFixed(1).padStart(6)} jobs/s (over the last ${n / 2}), ${at(n).toFixed(0)}s in`,
        );
      }
    }
  };
}

function run(workflow, args) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, 'run', path.join(root, 'bench', 'workflows', workflow), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    const watch = rateWatch(started);
    child.stderr.on('data', (d) => {
      err += d;
      watch(String(d));
      // Only the tail is kept: a long run logs a status line every 2 s.
      if (err.length > 1_000_000) err = err.slice(-100_000);
    });
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${workflow} exited ${code}:\n${err}`));
      const m = /finished: (\d+) job\(s\) run in ([\d.]+)s; leader peak RSS (\d+) MiB(?:, peak heap used (\d+) MiB of (\d+) MiB)?/.exec(
        err,
      );
      if (!m) return reject(new Error(`no summary line in the leader's log:\n${err}`));
      const heap = m[4] ? `${m[4]} MiB of ${m[5]} MiB` : '?';
      resolve({ value: JSON.parse(out), jobs: Number(m[1]), leaderSeconds: Number(m[2]), rssMiB: Number(m[3]), heap, wall });
    });
  });
}

async function bench(name, workflow, size, expected) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-bench-'));
  try {
    const r = await run(workflow, [
      path.join(dir, 'store'),
      '--logLevel',
      'info',
      '--statusInterval',
      '2',
      ...EXTRA_ARGS,
      '--',
      String(size),
    ]);
    if (r.value !== expected) throw new Error(`${name}: wrong result ${r.value}, expected ${expected}`);
    console.log(
      `${name.padEnd(22)} jobs=${String(r.jobs).padStart(6)}  wall=${r.wall.toFixed(2).padStart(7)}s  ` +
        `jobs/s=${(r.jobs / r.wall).toFixed(1).padStart(7)}  leader-peak-RSS=${String(r.rssMiB).padStart(4)} MiB  peak-heap-used=${r.heap}`,
    );
    return r;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const [which, sizeArg] = process.argv.slice(2);
const tri = (n) => (n * (n - 1)) / 2;
console.log(`node ${process.version}, ${os.availableParallelism()} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`);
if (!which || which === 'fanout') {
  const n = Number(sizeArg ?? 1000);
  await bench(`fan-out ${n}`, 'fanout.ts', n, tri(n));
}
if (!which || which === 'tree') {
  const w = Number(sizeArg ?? 100);
  await bench(`tree ${w}x${w}`, 'tree.ts', w, tri(w * w));
}
