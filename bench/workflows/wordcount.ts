/**
 * A word count in `chunks` pieces: the root splits a generated text, one `count-chunk` job per
 * piece counts its words, and a follow-on `sum` adds them up. With a `failing` index, that
 * chunk always throws: the workflow fails, naming `count-chunk`, after its tries.
 *
 *   toil run bench/workflows/wordcount.ts <store> -- <chunks> [failing]
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

export const countChunk = defineJob('count-chunk', async (ctx: JobContext, text: string, failing: boolean) => {
  if (failing) throw new Error('this chunk cannot be read');
  const words = text.split(/\s+/).filter((w) => w !== '').length;
  ctx.log(`${words} words`);
  return words;
});

export const sum = defineJob('sum', async (_ctx: JobContext, counts: number[]) => counts.reduce((a, b) => a + b, 0));

export const split = defineJob('split', async (ctx: JobContext, chunks: number, failing: number) => {
  const counts = Array.from({ length: chunks }, (_, i) => {
    const text = Array.from({ length: 100 + i }, (_, w) => `word${w}`).join(' ');
    return ctx.addChild(countChunk(text, i === failing)).rv();
  });
  return ctx.addFollowOn(sum(counts)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return split(Number(wf.args[0] ?? 16), Number(wf.args[1] ?? -1)).require({ memory: '256Mi', disk: '64Mi' });
}
