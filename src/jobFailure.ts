/**
 * How a failed job's error is told, once and about the workflow's own code:
 *
 * - its message, then the stack frames of the workflow's code only: none of toil-ts itself (its
 *   compiled `dist/`, its `src/` when source maps point there, its `bin/`), of installed packages
 *   (`node_modules`: the command-line parser that started the worker, say) or of Node's internals;
 * - the worker adds the message and those frames to the attempt's log (`--writeLogs` and
 *   `toil status` show them there); the leader shows them apart in its summary, above the log's
 *   last lines, and cuts them from those lines so that nothing is said twice.
 */
import { fileURLToPath } from 'node:url';

/** Why an attempt failed, as a worker tells the leader: the message, and the job's own frames. */
export interface JobFailure {
  text: string;
  stack?: string | undefined;
}

/** How messages name a job: `'align' (align-x3k9)`. */
export function jobLabel(name: string, id: string): string {
  return `'${name}' (${id})`;
}

/** Folders of this package whose frames say nothing about the job. */
const OWN = ['dist', 'src', 'bin'].map((d) => fileURLToPath(new URL(`../${d}/`, import.meta.url)));

function isOwnFrame(frame: string): boolean {
  const at = frame.replace('file://', '');
  return (
    at.includes('/node_modules/') ||
    at.includes('(node:') ||
    at.startsWith('at node:') ||
    at.startsWith('at async node:') ||
    OWN.some((dir) => at.includes(dir))
  );
}

/** The `at …` lines of a stack, trimmed. */
export function stackFrames(stack: string): string[] {
  return stack
    .split('\n')
    .filter((l) => /^\s+at /.test(l))
    .map((l) => l.trim());
}

/** The frames of a stack that are the workflow's own code (none, when it holds none). */
export function userFrames(stack: string): string[] {
  return stackFrames(stack).filter((f) => !isOwnFrame(f));
}

/** The lines a worker adds to a failed attempt's log: a blank line, the message, the frames. */
export function failureLines(label: string, failure: JobFailure): string {
  return `\nJob ${label} failed: ${failure.text}${failure.stack ? `\n${failure.stack}` : ''}\n`;
}

/** A failed attempt's log without the lines failureLines added at its end (unchanged if it has none). */
export function withoutFailureLines(log: string, label: string, failure: JobFailure): string {
  const at = log.lastIndexOf(`\nJob ${label} failed: ${failure.text}`);
  return at < 0 ? log : log.slice(0, at);
}
