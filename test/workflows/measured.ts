/**
 * Known work, for the measurements of --stats: 'burn' uses 1 s of CPU itself and 1 s in a child
 * process (CPU time, not wall time, so a busy machine does not change it), 'hog' touches 300 MiB,
 * 'nap' sleeps 3 s, 'scribble' writes a 50,000,000-byte file to the job store from its
 * temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type JobContext } from 'toil-ts';

const MiB = 2 ** 20;

/** Loops until this process has used `seconds` of CPU. */
const spin = (seconds: number) =>
  `const c0 = process.cpuUsage(); for (;;) { const c = process.cpuUsage(c0); if ((c.user + c.system) / 1e6 >= ${seconds}) break; }`;

const burn = defineJob('burn', async () => {
  new Function(spin(1))();
  execFileSync(process.execPath, ['-e', spin(1)]);
  return 'burnt';
});

const hog = defineJob('hog', async () => {
  const b = Buffer.alloc(300 * MiB, 1);
  return b[b.length - 1];
});

const nap = defineJob('nap', async () => {
  await new Promise((r) => setTimeout(r, 3000));
  return 'rested';
});

const scribble = defineJob('scribble', async (ctx: JobContext) => {
  const file = path.join(await ctx.fileStore.localTempDir(), 'out.bin');
  await writeFile(file, Buffer.alloc(50_000_000, 7));
  return ctx.fileStore.writeGlobalFile(file);
});

const root = defineJob('root', async (ctx: JobContext) => {
  ctx.addChild(burn().require({ cores: 1, memory: '512Mi' }));
  ctx.addChild(hog().require({ memory: '1Gi' }));
  ctx.addChild(nap().require({ memory: '256Mi' }));
  ctx.addChild(scribble().require({ memory: '512Mi', disk: '1Gi' }));
  return 'measured';
});

export default function workflow() {
  return root().require({ memory: '256Mi' });
}
