/**
 * Jobs for executor mode (test/engine/executors.test.ts). Modes (first argument; the second is a
 * directory for traces and counters):
 * - `memory`: one job fills more memory than its 256 MiB slot; two neighbours sleep a moment and finish;
 * - `disk`: one job writes 320 MB into its temporary directory, more than its 256 MiB slot; two neighbours as above;
 * - `lose`: three jobs write `start <name>` and wait until a file `go` exists (the test kills their executor first);
 * - `retry`: a job that fails its first attempt: while it waits out its retry backoff nothing runs.
 */
import { appendFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump, trace } from './trace.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const hog = defineJob('hog', async (_ctx: JobContext, dir: string) => {
  bump(dir, 'hog');
  const blocks: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    blocks.push(Buffer.alloc(16 * 1024 * 1024, 1));
    await sleep(20);
  }
  return blocks.length;
});

const scribbler = defineJob('scribbler', async (ctx: JobContext, dir: string) => {
  bump(dir, 'scribbler');
  const file = path.join(await ctx.fileStore.localTempDir(), 'big');
  const block = Buffer.alloc(10_000_000, 1);
  for (let i = 0; i < 32; i++) {
    appendFileSync(file, block);
    await sleep(50);
  }
  await sleep(10_000);
  return 'not killed';
});

const neighbour = defineJob('neighbour', async (_ctx: JobContext, dir: string, name: string) => {
  bump(dir, name);
  await sleep(3000);
  return name;
});

const waiter = defineJob('waiter', async (_ctx: JobContext, dir: string, name: string) => {
  const n = bump(dir, name);
  // The executor is this worker process's parent: the test kills it.
  trace(dir, `start ${name} ${n} ${process.ppid}`);
  while (!existsSync(path.join(dir, 'go'))) await sleep(100);
  return name;
});

const flaky = defineJob('flaky', async (_ctx: JobContext, dir: string) => {
  if (bump(dir, 'flaky') === 1) throw new Error('first attempt fails');
  return 'second attempt';
});

const root = defineJob('executors-root', async (ctx: JobContext, mode: string, dir: string) => {
  if (mode === 'memory') {
    ctx.addChild(hog(dir).require({ cores: 0.5, memory: '256Mi' }));
    for (const n of ['n1', 'n2']) ctx.addChild(neighbour(dir, n).require({ cores: 0.5, memory: '256Mi' }));
    return mode;
  }
  if (mode === 'disk') {
    const slot = { cores: 0.5, memory: '256Mi', disk: '20M' };
    ctx.addChild(scribbler(dir).require(slot));
    for (const n of ['n1', 'n2']) ctx.addChild(neighbour(dir, n).require(slot));
    return mode;
  }
  if (mode === 'lose') {
    for (const n of ['w1', 'w2', 'w3']) ctx.addChild(waiter(dir, n).require({ cores: 0.5, memory: '256Mi' }));
    return mode;
  }
  return ctx.addChild(flaky(dir)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return root(wf.args[0]!, wf.args[1]!);
}
