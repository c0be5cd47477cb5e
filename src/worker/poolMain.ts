/**
 * Entry point of a warm worker process for the single_machine batch system. It runs batch
 * jobs one after another as the leader sends them over IPC (and, told `warm`, opens the job
 * store and loads the workflow before the first), and dies with the leader. (An
 * executor's pool uses it too: executors/executorMain.ts.)
 */
import { runWorker, warmWorker, type WorkerArgs, type WorkerRecords } from './worker.js';
import { mapWorkflowFrames } from '../sourceMaps.js';

interface RunMessage {
  type: 'run';
  batchJobId: number;
  args: WorkerArgs;
}

function isRun(m: unknown): m is RunMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'run';
}

// Stack traces of jobs name the workflow's own files and lines (bundles carry source maps).
mapWorkflowFrames();

if (!process.send) {
  process.stderr.write('poolMain must be started by the single_machine batch system\n');
  process.exit(2);
}

// Never outlive the leader: an orphaned worker would run a job the next leader runs too.
process.on('disconnect', () => process.exit(1));

/** The records a job's end carries at most (JSON characters): past that, its leader reads them from the job store. */
const RECORDS_MAX = 1024 * 1024;

/** An executor's batch job (executor mode on this machine) runs the executor here, in place of one job. */
async function run(args: WorkerArgs, records: WorkerRecords, batchJobId: number): Promise<number> {
  // The pool watches each job's temporary directory when it enforces the job's disk (localPool.ts).
  const onTempDir = (dir: string) => process.send?.({ type: 'tempDir', batchJobId, dir });
  if (args.executor === undefined) return runWorker(args, records, { onTempDir });
  const { runExecutor } = await import('../batch/executors/executorMain.js');
  return runExecutor({ locator: args.locator, name: args.executor, ...(args.workDir ? { workDir: args.workDir } : {}) });
}

function isWarm(m: unknown): m is { type: 'warm'; locator: string } {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as { type?: unknown }).type === 'warm' &&
    typeof (m as { locator?: unknown }).locator === 'string'
  );
}

/** What `ps` shows of this process: the job it runs, or that it waits for one. */
const IDLE_TITLE = 'toil-ts worker: idle';
process.title = IDLE_TITLE;

process.on('message', (m: unknown) => {
  if (isWarm(m)) void warmWorker(m.locator);
  if (!isRun(m)) return;
  const records: WorkerRecords = { done: [], created: [], versions: {} };
  process.title = `toil-ts worker: job ${m.args.jobId}`;
  void run(m.args, records, m.batchJobId).then((code) => {
    process.title = IDLE_TITLE;
    const carried = code === 0 && JSON.stringify(records).length <= RECORDS_MAX ? { records } : {};
    process.send?.({ type: 'done', batchJobId: m.batchJobId, code, ...carried });
  });
});
