/**
 * For `toil stats`: four small 'count-chunk' jobs that ask for the default memory, a 'flaky' job
 * that fails its first attempt (counted in the directory given as the first argument) and an
 * 'always' job that fails every attempt.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump } from './trace.js';

const countChunk = defineJob('count-chunk', async (_ctx: JobContext, n: number) => n * 2);

const flaky = defineJob('flaky', async (_ctx: JobContext, dir: string) => {
  if (bump(dir, 'flaky') === 1) throw new Error('flaky: first attempt fails');
  return 'ok';
});

const always = defineJob('always', async () => {
  console.log('always: about to fail <script>alert(1)</script>');
  throw new Error('this job always fails');
});

const root = defineJob('root', async (ctx: JobContext, dir: string) => {
  for (let i = 0; i < 4; i++) ctx.addChild(countChunk(i));
  ctx.addChild(flaky(dir));
  ctx.addChild(always());
});

export default function workflow(wf: WorkflowContext) {
  return root(wf.args[0]!);
}
