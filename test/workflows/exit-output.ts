/** A tool wrapper that prints why it gives up, then ends its process: the output must survive. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const wrapper = defineJob('wrapper', async (ctx: JobContext) => {
  ctx.log('checking the input');
  console.log('reading sample.bam');
  process.stderr.write('samtools: input file is truncated\n');
  process.exit(3);
});

export default function workflow(_wf: WorkflowContext) {
  return wrapper();
}
