/** Jobs that take their worker process down: process.exit, and an uncaught exception. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump } from './trace.js';

const exiter = defineJob('exiter', async (_ctx: JobContext, dir: string) => {
  bump(dir, 'exiter');
  process.exit(7);
});

const thrower = defineJob('thrower', async (_ctx: JobContext, dir: string) => {
  bump(dir, 'thrower');
  setTimeout(() => {
    throw new Error('uncaught in a timer');
  }, 0);
  await new Promise((r) => setTimeout(r, 1000));
  return 'unreachable';
});

const fine = defineJob('fine', async (_ctx: JobContext, i: number) => i);

const root = defineJob('crash-root', async (ctx: JobContext, dir: string) => {
  ctx.addChild(exiter(dir));
  ctx.addChild(thrower(dir));
  for (let i = 0; i < 4; i++) ctx.addChild(fine(i));
  return 'root';
});

export default function workflow(wf: WorkflowContext) {
  return root(wf.args[0]!);
}
