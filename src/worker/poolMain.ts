/**
 * Entry point of a warm worker process for the single_machine batch system. It runs batch
 * jobs one after another as the leader sends them over IPC, and dies with the leader. (An
 * executor's pool uses it too: executors/executorMain.ts.)
 */
import { runWorker, type WorkerArgs } from './worker.js';

interface RunMessage {
  type: 'run';
  batchJobId: number;
  args: WorkerArgs;
}

function isRun(m: unknown): m is RunMessage {
  return typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'run';
}

// Stack traces of jobs name the workflow's own files and lines (bundles carry source maps).
process.setSourceMapsEnabled(true);

if (!process.send) {
  process.stderr.write('poolMain must be started by the single_machine batch system\n');
  process.exit(2);
}

// Never outlive the leader: an orphaned worker would run a job the next leader runs too.
process.on('disconnect', () => process.exit(1));

/** An executor's batch job (executor mode on this machine) runs the executor here, in place of one job. */
async function run(args: WorkerArgs): Promise<number> {
  if (args.executor === undefined) return runWorker(args);
  const { runExecutor } = await import('../batch/executors/executorMain.js');
  return runExecutor({ locator: args.locator, name: args.executor, ...(args.workDir ? { workDir: args.workDir } : {}) });
}

process.on('message', (m: unknown) => {
  if (!isRun(m)) return;
  void run(m.args).then((code) => {
    process.send?.({ type: 'done', batchJobId: m.batchJobId, code });
  });
});
