/** Benchmark: N children (trivial, or each sleeping S seconds) whose promised values a follow-on sums. Arguments: N [S]. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const one = defineJob('one', async (_ctx: JobContext, i: number, seconds: number) => {
  if (seconds > 0) await new Promise((r) => setTimeout(r, seconds * 1000));
  return i;
});

const sum = defineJob('sum', async (_ctx: JobContext, values: number[]) => values.reduce((a, b) => a + b, 0));

const fan = defineJob('fan', async (ctx: JobContext, n: number, seconds: number) => {
  const values = Array.from({ length: n }, (_, i) => ctx.addChild(one(i, seconds)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(Number(wf.args[0] ?? 1000), Number(wf.args[1] ?? 0));
}
