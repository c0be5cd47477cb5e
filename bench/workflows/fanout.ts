/** Benchmark: N trivial children whose promised values a follow-on sums. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const one = defineJob('one', async (_ctx: JobContext, i: number) => i);

const sum = defineJob('sum', async (_ctx: JobContext, values: number[]) => values.reduce((a, b) => a + b, 0));

const fan = defineJob('fan', async (ctx: JobContext, n: number) => {
  const values = Array.from({ length: n }, (_, i) => ctx.addChild(one(i)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(Number(wf.args[0] ?? 1000));
}
