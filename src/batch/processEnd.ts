/**
 * The last line a worker process writes when a job ends the process itself (`process.exit`, or
 * an uncaught exception), and how a batch system that watches the process's output reads it
 * back: so the job's failure is told as what the job did, not as a bare exit code.
 */
const PREFIX = 'toil worker: job ';

/** The exit code of a worker whose job failed and that saved the attempt's log itself (and told why). */
export const WORKER_EXIT_JOB_FAILED = 1;

/** The line a worker writes as its process ends while running the job `label`. */
export function processEndLine(label: string, how: { exitCode: number } | { uncaught: string }): string {
  const what = 'exitCode' in how ? `called process.exit(${how.exitCode})` : `crashed its process: uncaught ${how.uncaught}`;
  return `${PREFIX}${label} ${what}`;
}

/** Why the job ended its process, from the last lines of the process's output, if it says. */
export function processEndReason(tail: readonly string[]): string | undefined {
  // Node prints an uncaught exception after the process's exit listeners: search the whole tail.
  for (let i = tail.length - 1; i >= 0; i--) {
    const m = /^toil worker: job .+? \(\S+\) (called process\.exit\(-?\d+\)|crashed its process: .*)$/.exec(tail[i]!);
    if (m) return `the job ${m[1]}`;
  }
  return undefined;
}

/**
 * Whether the last output of a worker process that ended with `exitCode` is all there will be
 * of the attempt's log: the worker saves the log itself only when it exits
 * WORKER_EXIT_JOB_FAILED, and a job that ends the process with that same code says so in the
 * process's last line. Otherwise (process.exit, a crash, an OOM kill, a signal) the job store
 * holds no log of this attempt, or an earlier attempt's.
 */
export function tailIsAttemptLog(exitCode: number | null, tail: readonly string[]): boolean {
  return exitCode !== WORKER_EXIT_JOB_FAILED || processEndReason(tail) !== undefined;
}
