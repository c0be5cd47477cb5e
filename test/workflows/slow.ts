/**
 * A workflow that takes a while: N jobs that each sleep, for tests of kill, leases and restarts.
 * Each nap records its process id; a nap that finds an earlier run of itself still alive
 * writes "overlap <i>" to the trace (a job must never run twice at once).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const nap = defineJob('nap', async (_ctx: JobContext, dir: string, i: number, ms: number) => {
  const pidFile = path.join(dir, `pid-${i}`);
  try {
    const old = Number(readFileSync(pidFile, 'utf8'));
    if (old !== process.pid && alive(old)) trace(dir, `overlap ${i}`);
  } catch {
    /* first run */
  }
  writeFileSync(pidFile, String(process.pid));
  trace(dir, `nap ${i}`);
  await new Promise((r) => setTimeout(r, ms));
  trace(dir, `woke ${i}`);
  return i;
});

const root = defineJob('naps', async (ctx: JobContext, dir: string, n: number, ms: number) => {
  for (let i = 0; i < n; i++) ctx.addChild(nap(dir, i, ms));
  return n;
});

export default function workflow(wf: WorkflowContext) {
  return root(wf.args[0]!, Number(wf.args[1] ?? 4), Number(wf.args[2] ?? 5000));
}
