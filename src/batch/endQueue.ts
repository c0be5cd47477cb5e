/**
 * A queue of batch job ends with one waiting consumer (the leader). The rules that keep every
 * end delivered exactly once:
 *
 * - An end is handed to a waiter only while that waiter is current: a waiter that timed out, was
 *   cancelled (its AbortSignal), or was replaced by a newer `next()` is never given an end; the
 *   end stays queued for the next call.
 * - A caller that stops waiting for reasons of its own (a retry timer, a stop request) cancels
 *   its wait through the signal; it must not merely stop listening to the promise, or an end
 *   handed to it would be lost.
 * - A newer `next()` while one is waiting settles the older one with nothing (there is one
 *   consumer: a second waiter means the first was abandoned).
 */
import type { BatchJobEnd } from './types.js';

interface Waiter {
  deliver(e: BatchJobEnd | undefined): void;
}

export class EndQueue {
  private readonly items: BatchJobEnd[] = [];
  private waiter: Waiter | undefined;

  push(end: BatchJobEnd): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.deliver(end);
    } else this.items.push(end);
  }

  /** Whether the end of this batch job is queued and not yet taken. */
  has(batchJobId: number): boolean {
    return this.items.some((e) => e.batchJobId === batchJobId);
  }

  /** Ends queued and not yet taken. */
  get length(): number {
    return this.items.length;
  }

  /**
   * The next end, waiting at most `timeoutMs`; undefined when none came in time or `signal` was
   * aborted first (nothing is taken then).
   */
  next(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined> {
    const item = this.items.shift();
    if (item || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(item);
    this.waiter?.deliver(undefined);
    return new Promise((resolve) => {
      const w: Waiter = {
        deliver: (e) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', cancel);
          resolve(e);
        },
      };
      const cancel = () => {
        if (this.waiter === w) this.waiter = undefined;
        w.deliver(undefined);
      };
      const timer = setTimeout(cancel, timeoutMs);
      signal?.addEventListener('abort', cancel, { once: true });
      this.waiter = w;
    });
  }
}
