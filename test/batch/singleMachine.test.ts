/**
 * The batch system contract for `single_machine`: warm local worker processes, a file job
 * store, limits of 2 cores, 2 GiB of memory and 10 GiB of disk.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SingleMachineBatchSystem } from '../../src/batch/singleMachine.js';
import { FileJobStore } from '../../src/jobstore/file/fileJobStore.js';
import { describeBatchSystemConformance } from './conformance.js';

const GiB = 1024 ** 3;

/** Live worker processes (dist/worker/poolMain.js, titled `toil-ts worker: …` once started) whose parent is this process. */
async function workerProcesses(): Promise<number> {
  let n = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const [stat, cmdline] = await Promise.all([
      readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''),
      readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''),
    ]);
    // Fields after the command's closing parenthesis: state, ppid, …; a zombie ('Z') is not running.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === process.pid && state !== 'Z' && (cmdline.startsWith('toil-ts worker: ') || cmdline.includes('poolMain'))) n++;
  }
  return n;
}

describeBatchSystemConformance(
  'single_machine',
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-batch-'));
    return {
      store: new FileJobStore(path.join(dir, 'store')),
      sharedDir: dir,
      makeBatch: async () => new SingleMachineBatchSystem({ maxCores: 2, maxMemory: 2 * GiB, maxDisk: 10 * GiB, maxJobs: 8 }),
      beyondLimits: { requirements: { cores: 3 }, names: /asks for 3 cores, but at most 2 are available \(--maxCores\)/ },
      leftovers: workerProcesses,
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
  { endMs: 20_000, killMs: 5_000 },
);
