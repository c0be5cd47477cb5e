/**
 * Many jobs read one big file; one job writes a file its successor reads. wf.args: the local
 * path of the big file, and how many readers. Returns each reader's SHA-256 of what it read,
 * the IDs of the two files, and the written file's hash as its successor read it.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type FileID, type JobContext, type WorkflowContext } from 'toil-ts';

const small = { cores: 2, memory: '512M', disk: '300M' };
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const reader = defineJob('reader', async (ctx: JobContext, id: FileID) => sha256(await readFile(await ctx.fileStore.readGlobalFile(id))));

const writer = defineJob('writer', async (ctx: JobContext) => {
  const file = path.join(await ctx.fileStore.localTempDir(), 'made.bin');
  await writeFile(file, Buffer.alloc(4 * 1024 * 1024, 7));
  return ctx.fileStore.writeGlobalFile(file);
});

const spread = defineJob('spread', async (ctx: JobContext, id: FileID, readers: number) => {
  const hashes = Array.from({ length: readers }, () => ctx.addChild(reader(id).require(small)).rv());
  const made = ctx.addChild(writer().require(small));
  const madeRead = made.addChild(reader(made.rv()).require(small)).rv();
  return { hashes, big: id, made: made.rv(), madeRead };
});

export default async function workflow(wf: WorkflowContext) {
  const id = await wf.importFile(`file:${wf.args[0]!}`);
  return spread(id, Number(wf.args[1] ?? 20)).require(small);
}
