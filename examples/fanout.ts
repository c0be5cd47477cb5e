/**
 * A fan-out: `n` children square their index in parallel; a follow-on sums their promised
 * values, and the root's value is that sum (a returned promise is forwarded).
 *
 *   npx toil run examples/fanout.ts ./store -- 100
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

export const square = defineJob('square', async (_ctx: JobContext, i: number) => i * i);

export const sum = defineJob('sum', async (_ctx: JobContext, xs: number[]) => xs.reduce((a, b) => a + b, 0));

export const fan = defineJob('fan', async (ctx: JobContext, n: number) => {
  const values = Array.from({ length: n }, (_, i) => ctx.addChild(square(i)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(Number(wf.args[0] ?? 10));
}
