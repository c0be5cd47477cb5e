/** Benchmark: one job that sleeps (ms, default 10 minutes) and returns how long it slept. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const quiet = defineJob('quiet', async (_ctx: JobContext, ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return ms;
});

export default function workflow(wf: WorkflowContext) {
  return quiet(Number(wf.args[0] ?? 600_000));
}
