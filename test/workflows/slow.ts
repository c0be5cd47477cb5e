/** A workflow that takes a while: N jobs that each sleep, for tests of kill and leases. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

const nap = defineJob('nap', async (_ctx: JobContext, dir: string, i: number, ms: number) => {
  trace(dir, `nap ${i}`);
  await new Promise((r) => setTimeout(r, ms));
  return i;
});

const root = defineJob('naps', async (ctx: JobContext, dir: string, n: number, ms: number) => {
  for (let i = 0; i < n; i++) ctx.addChild(nap(dir, i, ms));
  return n;
});

export default function workflow(wf: WorkflowContext) {
  return root(wf.args[0]!, Number(wf.args[1] ?? 4), Number(wf.args[2] ?? 5000));
}
