/**
 * Benchmark for the leader's memory: a two-level tree, `width` branches of `width` leaves each
 * (width 100: 10,000 leaves, about 10,200 jobs), each branch summing its leaves in a follow-on.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const leaf = defineJob('leaf', async (_ctx: JobContext, i: number) => i);

const sum = defineJob('sum', async (_ctx: JobContext, values: number[]) => values.reduce((a, b) => a + b, 0));

const branch = defineJob('branch', async (ctx: JobContext, base: number, width: number) => {
  const values = Array.from({ length: width }, (_, i) => ctx.addChild(leaf(base + i)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

const tree = defineJob('tree', async (ctx: JobContext, width: number) => {
  const values = Array.from({ length: width }, (_, b) => ctx.addChild(branch(b * width, width)).rv());
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return tree(Number(wf.args[0] ?? 100));
}
