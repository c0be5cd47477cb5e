/**
 * Errors in the workflow's own code, two functions deep: by default a job that throws after an
 * await (its stack holds the workflow's frames, then toil-ts's, then those of whatever started
 * the worker); with the argument `build`, the default export itself, while building the root job.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

async function readSample(sample: string): Promise<string> {
  await new Promise((r) => setTimeout(r, 10));
  console.log(`samtools: ${sample}.bam: input file is truncated`);
  throw new Error(`alignment of ${sample} failed: truncated input`);
}

const align = defineJob('align', async (_ctx: JobContext, sample: string) => {
  const reads = await readSample(sample);
  return reads.length;
});

function sampleName(given: string | undefined): string {
  if (given === undefined) throw new Error('no sample named: give one after --');
  return given;
}

export default function workflow(wf: WorkflowContext) {
  const sample = wf.args[0] === 'build' ? sampleName(wf.args[1]) : 'sample-42';
  return align(sample).require({ memory: '256M', cores: 0.5, disk: '100M' });
}
