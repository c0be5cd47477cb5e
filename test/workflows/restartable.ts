/**
 * Restarts: a chain first → middle → last. 'middle' fails unless the file 'fixed' exists in the
 * trace directory, or sleeps when 'sleep' exists (so the leader can be killed meanwhile). Each
 * job counts its runs.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump, exists, trace } from './trace.js';

const stage = defineJob('stage', async (_ctx: JobContext, dir: string, name: string, input: string) => {
  bump(dir, name);
  trace(dir, `run ${name}`);
  if (name === 'middle') {
    if (exists(dir, 'sleep')) await new Promise((r) => setTimeout(r, 4000));
    else if (!exists(dir, 'fixed')) throw new Error('middle is broken until the file "fixed" exists');
  }
  return `${input}>${name}`;
});

export default function workflow(wf: WorkflowContext) {
  const dir = wf.args[0]!;
  const first = stage(dir, 'first', 'start');
  const middle = first.addChild(stage(dir, 'middle', first.rv()));
  const side = first.addChild(stage(dir, 'side', first.rv()));
  void side;
  middle.addChild(stage(dir, 'last', middle.rv()));
  return first;
}
