/**
 * Files: an imported input is read by a job, which writes an output file; a child reads it
 * back; a follow-on deletes a scratch file; the output is exported when the workflow succeeds.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type FileID, type JobContext, type WorkflowContext } from 'toil-ts';

const upper = defineJob('upper', async (ctx: JobContext, input: FileID) => {
  const local = await ctx.fileStore.readGlobalFile(input);
  const text = await readFile(local, 'utf8');
  const tmp = await ctx.fileStore.localTempDir();
  const outPath = path.join(tmp, 'upper.txt');
  await writeFile(outPath, text.toUpperCase());
  const out = await ctx.fileStore.writeGlobalFile(outPath);
  const scratch = await ctx.fileStore.writeGlobalFileStream('scratch data', 'scratch.txt');
  ctx.addChild(check(out));
  ctx.addFollowOn(drop(scratch));
  return { out, scratch, tmp };
});

const check = defineJob('check', async (ctx: JobContext, id: FileID) => {
  const chunks: Buffer[] = [];
  for await (const c of await ctx.fileStore.readGlobalFileStream(id)) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString().length;
});

const drop = defineJob('drop', async (ctx: JobContext, id: FileID) => {
  await ctx.fileStore.deleteGlobalFile(id);
  return 'dropped';
});

export default async function workflow(wf: WorkflowContext) {
  const [input, output] = wf.args as [string, string];
  const id = await wf.importFile(input);
  const job = upper(id);
  wf.exportFile(job.rv<FileID>('out'), output);
  return job;
}
