import type { BatchJobEnd } from './types.js';

/** A queue of batch job ends with a waiting `next(timeout)`. */
export class EndQueue {
  private readonly items: BatchJobEnd[] = [];
  private waiter: ((e: BatchJobEnd | undefined) => void) | undefined;

  push(end: BatchJobEnd): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(end);
    } else this.items.push(end);
  }

  next(timeoutMs: number): Promise<BatchJobEnd | undefined> {
    const item = this.items.shift();
    if (item || timeoutMs <= 0) return Promise.resolve(item);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiter = (e) => {
        clearTimeout(timer);
        resolve(e);
      };
    });
  }

  /** Wakes a waiter with nothing (e.g. to let the leader react to a timer). */
  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
  }
}
