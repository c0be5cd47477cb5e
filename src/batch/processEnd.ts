/**
 * The last line a worker process writes when a job ends the process itself (`process.exit`, or
 * an uncaught exception), and how a batch system that watches the process's output reads it
 * back: so the job's failure is told as what the job did, not as a bare exit code.
 */
const PREFIX = 'toil worker: job ';

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
