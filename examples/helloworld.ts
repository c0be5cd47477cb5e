/**
 * Hello world, as in the Kubernetes guide: one job that greets, run on the embedded default
 * (a directory as job store, local processes as workers) with `npm start`, or on a cluster with
 * `toil run examples/helloworld.ts aws:us-west-2:demouser-toil-test-jobstore --batchSystem kubernetes`.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

export const hello = defineJob('hello', async (ctx: JobContext, name: string) => {
  ctx.log(`Hello, ${name}`);
  return `Hello, ${name}`;
});

export default function workflow(wf: WorkflowContext) {
  return hello(wf.args[0] ?? 'world').require({ memory: '2G', cores: 1, disk: '3G' });
}
