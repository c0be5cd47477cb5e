/**
 * Exactly once: a fan-out of N leaves (each a little work and a file written through the job
 * store) and a follow-on that sums them. Every job records each run in the trace file, so a
 * test can check that none ran twice. Args: <trace dir> <n>.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

const leaf = defineJob('leaf', async (ctx: JobContext, dir: string, i: number) => {
  trace(dir, `run leaf ${i}`);
  const local = path.join(await ctx.fileStore.localTempDir(), `leaf-${i}.txt`);
  await writeFile(local, String(i * i));
  await ctx.fileStore.writeGlobalFile(local);
  return i * i;
});

const total = defineJob('total', async (_ctx: JobContext, dir: string, xs: number[]) => {
  trace(dir, 'run total');
  return xs.reduce((a, b) => a + b, 0);
});

const fan = defineJob('fan', async (ctx: JobContext, dir: string, n: number) => {
  trace(dir, 'run fan');
  const values = Array.from({ length: n }, (_, i) => ctx.addChild(leaf(dir, i)).rv());
  return ctx.addFollowOn(total(dir, values)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(wf.args[0]!, Number(wf.args[1] ?? 10));
}
