/**
 * A root job held at a gate: it adds two children and a follow-on that sums their values, then
 * waits for the file 'go' in the trace directory before it returns — so a test can hold a worker
 * just before it commits. Each run of the gate traces 'gate waiting'; each leaf counts its runs.
 * The workflow's value is 10.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump, exists, trace } from './trace.js';

const leaf = defineJob('leaf', async (_ctx: JobContext, dir: string, i: number) => {
  bump(dir, `leaf-${i}`);
  return i * 10;
});

const sum = defineJob('sum', async (_ctx: JobContext, xs: number[]) => xs.reduce((a, b) => a + b, 0));

const gate = defineJob('gate', async (ctx: JobContext, dir: string) => {
  const values = [0, 1].map((i) => ctx.addChild(leaf(dir, i)).rv());
  trace(dir, 'gate waiting');
  while (!exists(dir, 'go')) await new Promise((r) => setTimeout(r, 100));
  return ctx.addFollowOn(sum(values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return gate(wf.args[0]!);
}
