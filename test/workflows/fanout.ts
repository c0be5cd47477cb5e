/** Fan-out: N children each return a number; a follow-on sums their promised values. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const square = defineJob('square', async (_ctx: JobContext, i: number) => i * i);

const sum = defineJob('sum', async (_ctx: JobContext, values: number[]) => values.reduce((a, b) => a + b, 0));

const fan = defineJob('fan', async (ctx: JobContext, n: number) => {
  const values = Array.from({ length: n }, (_, i) => ctx.addChild(square(i)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(Number(wf.args[0] ?? 100));
}
