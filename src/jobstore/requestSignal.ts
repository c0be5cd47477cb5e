/**
 * Bounding a caller's store requests: store calls made inside `withRequestSignal(signal, fn)`
 * carry `signal` into every request they make (S3 through `S3Bucket`, SimpleDB through its
 * client) and into every pause between retries, and are abandoned as soon as it aborts. The
 * lease bounds each renewal attempt this way, and the leader's fence (`fenced.ts`) ends its
 * changes to the store when the lease's validity ends.
 *
 * An abandoned request may still have taken effect at the store (it may have been on the wire):
 * the error says so (`context.abandoned`), and a caller of a conditional write reads again to
 * find out. When the signal was aborted with a toil-ts error as its reason (the lease's
 * LeaseLostError), that error is what the call throws.
 *
 * The signal travels with the asynchronous context (AsyncLocalStorage) rather than as a
 * parameter of every store method: it is the caller's deadline, not part of what a call does,
 * and the layers in between (versioned objects, SimpleDB records) pass it on unawares. The file
 * job store's calls are local and short: they do not look at it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { ToilError, TransientError } from '../errors.js';

const current = new AsyncLocalStorage<AbortSignal>();

/** Runs `fn` with `signal` on its store requests (and any signal already in force). */
export function withRequestSignal<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const outer = current.getStore();
  return current.run(outer ? AbortSignal.any([outer, signal]) : signal, fn);
}

/** Runs `fn` with no signal: for work that must not stop half-way once begun. */
export function withoutRequestSignal<T>(fn: () => Promise<T>): Promise<T> {
  return current.exit(fn);
}

/** The signal in force for requests made now, if any. */
export function requestSignal(): AbortSignal | undefined {
  return current.getStore();
}

/** Why `signal` aborted, for messages. */
function reasonText(reason: unknown): string {
  if (reason instanceof Error || reason instanceof DOMException)
    return reason.name === 'TimeoutError' ? 'its time ran out' : reason.message;
  return String(reason);
}

/** The error for a request abandoned because `signal` aborted. */
export function abandonedError(doing: string, signal: AbortSignal, cause?: unknown): Error {
  if (signal.reason instanceof ToilError) return signal.reason;
  return new TransientError(`${doing} was abandoned (${reasonText(signal.reason)}); it may or may not have happened`, {
    cause,
    context: { abandoned: true },
  });
}

/** Throws the abandonment error if the signal in force has aborted. */
export function throwIfAbandoned(doing: string): void {
  const signal = current.getStore();
  if (signal?.aborted) throw abandonedError(doing, signal);
}

/** Waits `ms`, or throws the abandonment error as soon as the signal in force aborts. */
export function pause(ms: number, doing: string): Promise<void> {
  const signal = current.getStore();
  if (!signal) return new Promise((r) => setTimeout(r, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(abandonedError(doing, signal));
    const onAbort = () => {
      clearTimeout(t);
      reject(abandonedError(doing, signal));
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
