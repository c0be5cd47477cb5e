/**
 * N jobs, one after another on one node (each asks for the whole node), read the same file and
 * report how long `readGlobalFile` took and the SHA-256 of what they got. wf.args: the file's
 * local path, N, the cores of the node.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { defineJob, type FileID, type JobContext, type WorkflowContext } from 'toil-ts';

const reader = defineJob('reader', async (ctx: JobContext, id: FileID) => {
  const t0 = performance.now();
  const file = await ctx.fileStore.readGlobalFile(id);
  const ms = performance.now() - t0;
  return {
    ms,
    sha: createHash('sha256')
      .update(await readFile(file))
      .digest('hex'),
  };
});

const all = defineJob('all', async (ctx: JobContext, id: FileID, n: number, cores: number) =>
  Array.from({ length: n }, () => ctx.addChild(reader(id).require({ cores, memory: '1Gi', disk: '1Gi' })).rv()),
);

export default async function workflow(wf: WorkflowContext) {
  const id = await wf.importFile(`file:${wf.args[0]!}`);
  return all(id, Number(wf.args[1] ?? 10), Number(wf.args[2] ?? 4)).require({ cores: 0.5, memory: '256M', disk: '100M' });
}
