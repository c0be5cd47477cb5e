import { ToilError, TypeCheckError, errorMessage } from '../errors.js';

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

/** What the CLI prints for an error: one line, and the compiler's messages under it for type errors. */
export function forPeople(e: unknown): string {
  if (e instanceof TypeCheckError) return [oneLine(e), ...e.details.map((d) => `  ${d}`)].join('\n');
  return oneLine(e);
}
