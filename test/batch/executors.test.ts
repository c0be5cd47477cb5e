/**
 * The batch system contract for executor mode: executors run by `single_machine` (2 cores,
 * 4 GiB, 10 GiB of disk), each running the jobs it is given in its own warm worker processes,
 * over a file job store. The same contract every batch system keeps (conformance.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ExecutorBatchSystem } from '../../src/batch/executors/executorBatch.js';
import { messageName } from '../../src/batch/executors/protocol.js';
import { processTree } from '../../src/batch/processMemory.js';
import { SingleMachineBatchSystem } from '../../src/batch/singleMachine.js';
import { FileJobStore } from '../../src/jobstore/file/fileJobStore.js';
import { createLogger } from '../../src/log.js';
import { toil } from '../helpers/run.js';
import { describeBatchSystemConformance } from './conformance.js';

const GiB = 1024 ** 3;

/** Whether a process is a live worker process running a job (its title names the job: dist/worker/poolMain.ts), and its parent. */
async function poolProcess(pid: number): Promise<{ live: boolean; ppid: number }> {
  const [stat, cmdline] = await Promise.all([
    readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
    readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
  ]);
  const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { live: state !== 'Z' && cmdline.startsWith('toil-ts worker: job '), ppid: Number(ppid) };
}

/**
 * Live processes that run jobs: worker processes whose parent is an executor (itself a worker
 * process of single_machine). An executor with nothing to do stays until it is idle long
 * enough; a job it was told to kill must not.
 */
async function jobProcesses(): Promise<number> {
  let n = 0;
  for (const pid of processTree(process.pid).slice(1)) {
    const me = await poolProcess(pid);
    if (me.live && me.ppid !== process.pid && (await poolProcess(me.ppid)).live) n++;
  }
  return n;
}

describeBatchSystemConformance(
  'executors on single_machine',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-batch-'));
    const store = new FileJobStore(path.join(dir, 'store'));
    return {
      store,
      sharedDir: dir,
      makeBatch: async () =>
        new ExecutorBatchSystem(new SingleMachineBatchSystem({ maxCores: 2, maxMemory: 4 * GiB, maxDisk: 10 * GiB, maxJobs: 8 }), {
          store,
          logger: createLogger('warning'),
          bounds: { slots: 4, maxCores: 4, maxMemory: 16 * GiB, maxDisk: 64 * GiB },
          silenceMs: 60_000,
        }),
      beyondLimits: { requirements: { cores: 3 }, names: /asks for 3 cores, but at most 2 are available \(--maxCores\)/ },
      leftovers: jobProcesses,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { endMs: 20_000, killMs: 5_000 },
);

describe('executors on single_machine at shutdown', () => {
  it('leaves no executor behind, busy or idle', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-batch-'));
    const store = new FileJobStore(path.join(dir, 'store'));
    const inner = new SingleMachineBatchSystem({ maxCores: 2, maxMemory: 4 * GiB, maxDisk: 10 * GiB, maxJobs: 8 });
    try {
      // An executor is a batch job of the inner system: start two, then shut everything down.
      for (const name of ['e1', 'e2']) {
        await inner.issue({
          jobId: `executor-${name}`,
          jobName: 'executor',
          requirements: { cores: 1, memory: GiB, disk: GiB, accelerators: [], preemptible: false },
          worker: { locator: store.locator, jobId: `executor-${name}`, executor: name },
        });
      }
      const executors = async () => {
        let n = 0;
        for (const pid of processTree(process.pid).slice(1)) if ((await poolProcess(pid)).live) n++;
        return n;
      };
      const until = Date.now() + 10_000;
      while ((await executors()) < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await executors()).toBeGreaterThanOrEqual(2);
      await new ExecutorBatchSystem(inner, {
        store,
        logger: createLogger('warning'),
        bounds: { slots: 4, maxCores: 4, maxMemory: 16 * GiB, maxDisk: 64 * GiB },
        silenceMs: 60_000,
      }).shutdown();
      expect(await executors()).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an executor whose leader is gone', () => {
  it('exits by itself once it has heard nothing for the silence its leader set, saying why', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-batch-'));
    const store = new FileJobStore(path.join(dir, 'store'));
    try {
      await store.create();
      // The leader's first message, and then nothing: as when it dies.
      await store.writeShared(messageName('e1', 'down', 1), JSON.stringify({ slots: 1, silenceMs: 1500 }), { ifAbsent: true });
      const started = Date.now();
      const r = await toil(['worker', store.locator, '--executor', 'e1']);
      expect(r.code).toBe(0);
      expect(r.stderr).toMatch(/toil executor e1: heard nothing from the leader for 2 s: taking it as gone; exiting/);
      expect(Date.now() - started).toBeLessThan(15_000);
      // It said it started (its first message up).
      expect((await store.readShared(messageName('e1', 'up', 1)))?.value.toString()).toMatch(/"started"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('is a usage error without a job id or --executor', async () => {
    const r = await toil(['worker', 'file:/nowhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/toil worker needs a job id, or --executor <name>, and not both/);
  });
});
