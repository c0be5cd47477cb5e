/**
 * A workflow that takes a while: N jobs that each sleep, for tests of kill, leases and restarts.
 * A nap that finds an earlier run of itself still running writes "overlap <i>" to the trace (a
 * job must never run twice at once). Runs are told apart by heartbeats, not process ids: pods
 * have PID namespaces of their own, so a process id seen in one pod names nothing in another.
 * Each run touches its own file `beat-<i>-<pid>-<random>` every 100 ms; a run that sees another
 * run's file touched again within 500 ms of its start has found that run alive.
 */
import { readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

const BEAT_MS = 100;
const LOOK_MS = 500;

/** Other runs' heartbeat files of nap `i` and when each was last touched. */
function otherBeats(dir: string, i: number, mine: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of readdirSync(dir)) {
    if (!f.startsWith(`beat-${i}-`) || f === mine) continue;
    try {
      out.set(f, statSync(path.join(dir, f)).mtimeMs);
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

const nap = defineJob('nap', async (_ctx: JobContext, dir: string, i: number, ms: number) => {
  const mine = `beat-${i}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const before = otherBeats(dir, i, mine);
  const beat = () => writeFileSync(path.join(dir, mine), '');
  beat();
  const timer = setInterval(beat, BEAT_MS);
  trace(dir, `nap ${i}`);
  const look = new Promise<void>((resolve) =>
    setTimeout(() => {
      for (const [f, t] of otherBeats(dir, i, mine)) if (t > (before.get(f) ?? Infinity)) trace(dir, `overlap ${i}`);
      resolve();
    }, LOOK_MS),
  );
  await Promise.all([new Promise((r) => setTimeout(r, ms)), look]);
  clearInterval(timer);
  rmSync(path.join(dir, mine), { force: true });
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
