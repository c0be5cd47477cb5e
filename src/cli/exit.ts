import { ToilError, TypeCheckError, errorMessage } from '../errors.js';
import { stackFrames, userFrames } from '../jobFailure.js';

/** Exit codes of the CLI: 0 success, 1 the workflow failed, 2 bad usage or configuration. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Codes of errors that mean "bad usage or configuration" (exit 2, nothing started). */
const USAGE_CODES = new Set(['USAGE', 'JOBSTORE_EXISTS', 'JOBSTORE_MISSING', 'LEASE_HELD', 'GRAPH', 'SERIALIZATION']);

export function exitCodeFor(e: unknown): number {
  return e instanceof ToilError && USAGE_CODES.has(e.code) ? EXIT_USAGE : EXIT_FAILED;
}

/** One line for people: the message, without a stack. */
export function oneLine(e: unknown): string {
  return errorMessage(e).split('\n')[0] ?? String(e);
}

/**
 * What the CLI prints for an error: one line; under it, the compiler's messages for type errors,
 * and for an error that is not one of ours (the workflow's code threw it while building the root
 * job, say) the workflow's own stack frames. With `debug` (TOIL_DEBUG), every frame of any error
 * but bad usage.
 */
export function forPeople(e: unknown, opts: { debug?: boolean } = {}): string {
  if (e instanceof TypeCheckError) return [oneLine(e), ...e.details.map((d) => `  ${d}`)].join('\n');
  const stack = e instanceof Error ? (e.stack ?? '') : '';
  const frames = opts.debug && exitCodeFor(e) !== EXIT_USAGE ? stackFrames(stack) : e instanceof ToilError ? [] : userFrames(stack);
  return [oneLine(e), ...frames.map((f) => `    ${f}`)].join('\n');
}
