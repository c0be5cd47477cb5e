/**
 * The class form of jobs, an async workflow function and promises in fields: counts the lines
 * and words of a text file, one child job per line.
 *
 *   npx toil run examples/classjobs.ts ./store -- examples/poem.txt
 */
import { readFile } from 'node:fs/promises';
import { defineJob, Job, UsageError, type FileID, type JobContext, type Promised, type WorkflowContext } from 'toil-ts';

export const countWords = defineJob(
  'count-words',
  async (_ctx: JobContext, line: string) => line.split(/\s+/).filter((w) => w !== '').length,
);

interface Counts {
  lines: number;
  words: number;
}

/** Its fields are its arguments: JSON, or promises (`Promised<T>`) resolved before run(). */
export class Total extends Job<Counts> {
  constructor(
    readonly lines: number,
    readonly counts: Promised<number[]>,
  ) {
    super();
  }

  async run(_ctx: JobContext): Promise<Counts> {
    const counts = this.counts as number[]; // resolved by now
    return { lines: this.lines, words: counts.reduce((a, b) => a + b, 0) };
  }
}
Job.register(Total, 'total');

export class CountFile extends Job<Counts> {
  constructor(readonly file: Promised<FileID>) {
    super();
    this.require({ memory: '256Mi', disk: '100M' });
  }

  async run(ctx: JobContext) {
    const local = await ctx.fileStore.readGlobalFile(this.file as FileID);
    const lines = (await readFile(local, 'utf8')).split('\n').filter((l) => l.trim() !== '');
    const counts = lines.map((line) => ctx.addChild(countWords(line)).rv());
    return ctx.addFollowOn(new Total(lines.length, counts)).rv();
  }
}
Job.register(CountFile, 'count-file');

/** The default export may be async: wf.importFile returns a promise of the file's id. */
export default async function workflow(wf: WorkflowContext) {
  const input = wf.args[0];
  if (input === undefined) throw new UsageError('give a text file after --, e.g. -- examples/poem.txt');
  return new CountFile(await wf.importFile(input));
}
