/**
 * A small word count whose run is worth a report (`--stats`): 'split' writes a text in chunks,
 * twelve 'count-chunk' jobs each read one (through the node cache), spend some CPU and memory
 * counting, and 'merge' adds up their counts; 'merge' fails its first attempt, as a job on a
 * flaky network might, and is retried.
 *
 *   npx toil run examples/wordcount.ts ./store --stats --retryCount 2
 *   npx toil stats ./store.stats.json
 *   npx toil report ./store.stats.json -o report.html
 */
import { existsSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defineJob, type FileID, type JobContext, type WorkflowContext } from 'toil-ts';

const WORDS = ['toil', 'pod', 'node', 'cache', 'job', 'leader', 'worker', 'store'];

export const countChunk = defineJob('count-chunk', async (ctx: JobContext, file: FileID, i: number) => {
  const text = await readFile(await ctx.fileStore.readGlobalFile(file), 'utf8');
  // Some memory and CPU, more for later chunks: a table per pass over the words.
  const tables = Array.from({ length: 4 + i }, () => Buffer.alloc(8 * 2 ** 20, i));
  const counts: Record<string, number> = {};
  for (let pass = 0; pass < 20 + 10 * i; pass++) for (const w of text.split(/\s+/)) counts[w] = (counts[w] ?? 0) + (pass === 0 ? 1 : 0);
  ctx.log(`chunk ${i}: ${Object.keys(counts).length} distinct words in ${tables.length} tables`);
  return counts;
});

export const merge = defineJob('merge', async (ctx: JobContext, counts: Array<Record<string, number>>) => {
  const marker = path.join(os.tmpdir(), `wordcount-${ctx.workflowId}`);
  if (!existsSync(marker)) {
    writeFileSync(marker, 'tried');
    throw new Error('connection reset while saving the totals');
  }
  const total: Record<string, number> = {};
  for (const c of counts) for (const [w, n] of Object.entries(c)) total[w] = (total[w] ?? 0) + n;
  return total;
});

export const split = defineJob('split', async (ctx: JobContext, chunks: number) => {
  const dir = await ctx.fileStore.localTempDir();
  const counts = [];
  for (let i = 0; i < chunks; i++) {
    const file = path.join(dir, `chunk-${i}.txt`);
    await writeFile(file, Array.from({ length: 20_000 }, (_, k) => WORDS[(k * (i + 3)) % WORDS.length]).join(' '));
    const id = await ctx.fileStore.writeGlobalFile(file);
    counts.push(ctx.addChild(countChunk(id, i).require({ memory: '1Gi', cores: 1 })).rv());
  }
  return ctx.addFollowOn(merge(counts).require({ memory: '256Mi' })).rv();
});

export default function workflow(wf: WorkflowContext) {
  return split(Number(wf.args[0] ?? 12)).require({ memory: '512Mi' });
}
