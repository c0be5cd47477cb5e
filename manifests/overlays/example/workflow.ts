// Your workflow: the default export returns the root job (see the README's "Writing workflows").
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

export const hello = defineJob('hello', async (ctx: JobContext, name: string) => {
  ctx.log(`Hello, ${name}`);
  return `Hello, ${name}`;
});

export default function workflow(wf: WorkflowContext) {
  return hello(wf.args[0] ?? 'world').require({ memory: '1G', cores: 1, disk: '1G' });
}
