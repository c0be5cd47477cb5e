/**
 * The node cache through the CLI. `fan <file> <n>`: n jobs read the same imported file, and a
 * job writes a file that its child reads. `evict <a> <b> <c>`: a job reads three files while
 * holding them, its child reads them again in another order (run with a small --cacheSize).
 * `once <dir> <n>`: n jobs ask for the same tool image through onceOnNode (`once-shared`: with
 * `{ shared: true }`); each run of the producer appends a line to `<dir>/produced`. `damage <file>`: a careless job writes into the
 * file it read (a link to the node's cached copy), in place; its child reads the file again.
 * Each read reports the file's inode, link count and hash.
 */
import { createHash } from 'node:crypto';
import { appendFile, chmod, open, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type FileID, type JobContext, type WorkflowContext } from 'toil-ts';

interface Seen {
  ino: number;
  /** Links to the file: 1 for a private copy, more for the node's cached copy. */
  nlink: number;
  sha: string;
}

async function look(file: string): Promise<Seen> {
  const st = await stat(file);
  return {
    ino: st.ino,
    nlink: st.nlink,
    sha: createHash('sha256')
      .update(await readFile(file))
      .digest('hex'),
  };
}

const readOne = defineJob('read-one', async (ctx: JobContext, id: FileID) => look(await ctx.fileStore.readGlobalFile(id)));

const collect = defineJob('collect', async (_ctx: JobContext, reads: Seen[], written: Seen) => ({ reads, written }));

const writer = defineJob('writer', async (ctx: JobContext) => {
  const file = path.join(await ctx.fileStore.localTempDir(), 'made.bin');
  await writeFile(file, Buffer.alloc(1 << 20, 7));
  return ctx.addChild(readOne(await ctx.fileStore.writeGlobalFile(file))).rv();
});

const fan = defineJob('fan', async (ctx: JobContext, id: FileID, n: number) => {
  const reads = Array.from({ length: n }, () => ctx.addChild(readOne(id)).rv());
  const written = ctx.addChild(writer()).rv();
  return ctx.addFollowOn(collect(reads, written)).rv();
});

/** Reads files one after another; the job holds each until it ends. */
async function readEach(ctx: JobContext, ids: FileID[]): Promise<Seen[]> {
  const seen: Seen[] = [];
  for (const id of ids) seen.push(await look(await ctx.fileStore.readGlobalFile(id)));
  return seen;
}

const readAll = defineJob('read-all', readEach);

const hoard = defineJob('hoard', async (ctx: JobContext, ids: FileID[]) => {
  const first = await readEach(ctx, ids);
  const [a, b, c] = ids as [FileID, FileID, FileID];
  const second = ctx.addChild(readAll([c, b, a])).rv();
  return { first, second };
});

const useTool = defineJob('use-tool', async (ctx: JobContext, dir: string, shared: boolean) => {
  const produce = async (d: string) => {
    await appendFile(path.join(dir, 'produced'), `${process.pid}\n`);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(path.join(d, 'ubuntu.sif'), 'an image');
  };
  const images = await ctx.fileStore.onceOnNode('docker://ubuntu:24.04', produce, shared ? { shared } : undefined);
  return { images, content: await readFile(path.join(images, 'ubuntu.sif'), 'utf8') };
});

const tools = defineJob('tools', async (ctx: JobContext, dir: string, n: number, shared: boolean) =>
  Array.from({ length: n }, () => ctx.addChild(useTool(dir, shared)).rv()),
);

/** Writes over the start of the file it was given, in place, a moment after reading it. */
const careless = defineJob('careless', async (ctx: JobContext, id: FileID) => {
  const file = await ctx.fileStore.readGlobalFile(id);
  const seen = await look(file);
  await new Promise((r) => setTimeout(r, 50));
  await chmod(file, 0o644);
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from('damaged!'), 0, 8, 0);
  await fh.close();
  return { seen, after: ctx.addChild(readOne(id)).rv() };
});

export default async function workflow(wf: WorkflowContext) {
  const [mode, ...files] = wf.args;
  if (mode === 'damage') return careless(await wf.importFile(files[0]!));
  if (mode === 'once' || mode === 'once-shared') return tools(files[0]!, Number(files[1] ?? 4), mode === 'once-shared');
  if (mode === 'fan') return fan(await wf.importFile(files[0]!), Number(files[1] ?? 10));
  const ids: FileID[] = [];
  for (const f of files) ids.push(await wf.importFile(f));
  return hoard(ids);
}
