/**
 * Retries: 'flaky' fails until it has been tried `failTimes` times, recording when each attempt
 * started; 'always' always fails.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump, trace } from './trace.js';

const flaky = defineJob('flaky', async (_ctx: JobContext, dir: string, failTimes: number) => {
  const n = bump(dir, 'flaky');
  trace(dir, `attempt ${n} ${Date.now()}`);
  if (n <= failTimes) throw new Error(`flaky failure number ${n}`);
  return `ok after ${n}`;
});

const always = defineJob('always', async (_ctx: JobContext, dir: string) => {
  const n = bump(dir, 'always');
  console.log(`always: attempt ${n} about to fail`);
  throw new Error('this job always fails');
});

export default function workflow(wf: WorkflowContext) {
  const [dir, mode, failTimes] = wf.args as [string, string, string];
  return mode === 'always' ? always(dir) : flaky(dir, Number(failTimes));
}
