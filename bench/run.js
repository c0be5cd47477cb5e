#!/usr/bin/env node
/**
 * Engine benchmarks on the embedded default (file job store, single_machine batch system).
 * Each runs the real CLI in a fresh job store and prints jobs/s, wall time and the leader's
 * peak RSS (as the leader reports it). Method: one warm-up run is not done on purpose — what a
 * user sees on the first run is what is measured; run it several times and take the median.
 *
 *   npm run bench                      # both, default sizes
 *   node bench/run.js fanout 2000      # one, with a size
 *   node bench/run.js tree 100
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = path.join(root, 'bin', 'toil.js');

function run(workflow, args) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, 'run', path.join(root, 'bench', 'workflows', workflow), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${workflow} exited ${code}:\n${err}`));
      const m = /finished: (\d+) job\(s\) run in ([\d.]+)s; leader peak RSS (\d+) MiB/.exec(err);
      if (!m) return reject(new Error(`no summary line in the leader's log:\n${err}`));
      resolve({ value: JSON.parse(out), jobs: Number(m[1]), leaderSeconds: Number(m[2]), rssMiB: Number(m[3]), wall });
    });
  });
}

async function bench(name, workflow, size, expected) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-bench-'));
  try {
    const r = await run(workflow, [path.join(dir, 'store'), '--logLevel', 'info', '--', String(size)]);
    if (r.value !== expected) throw new Error(`${name}: wrong result ${r.value}, expected ${expected}`);
    console.log(
      `${name.padEnd(22)} jobs=${String(r.jobs).padStart(6)}  wall=${r.wall.toFixed(2).padStart(7)}s  ` +
        `jobs/s=${(r.jobs / r.wall).toFixed(1).padStart(7)}  leader-peak-RSS=${String(r.rssMiB).padStart(4)} MiB`,
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
