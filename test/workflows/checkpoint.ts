/**
 * Checkpoint: 'cp' is a checkpoint whose dynamic child fails while the checkpoint has run only
 * once. The failed subtree makes the checkpoint run again; then the child succeeds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump, trace } from './trace.js';

function count(dir: string, name: string): number {
  try {
    return Number(readFileSync(path.join(dir, `count-${name}`), 'utf8'));
  } catch {
    return 0;
  }
}

const child = defineJob('cp-child', async (_ctx: JobContext, dir: string) => {
  const n = bump(dir, 'child');
  trace(dir, `child ${n}`);
  if (count(dir, 'cp') < 2) throw new Error('child fails during the first checkpoint run');
  return 'child ok';
});

const cp = defineJob('cp', async (ctx: JobContext, dir: string) => {
  const n = bump(dir, 'cp');
  trace(dir, `cp ${n}`);
  // A file per run: the first run's is discarded with the rerun.
  const file = await ctx.fileStore.writeGlobalFileStream(`run ${n}`, `cp-${n}.txt`);
  trace(dir, `file ${file}`);
  return ctx.addChild(child(dir)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return cp(wf.args[0]!).checkpoint();
}
