/**
 * The leader's heap over a run: its largest use, sampled each second (V8 keeps no peak of its
 * own), and its limit, for the line that ends a run beside the peak RSS.
 */
import v8 from 'node:v8';
import { HEAP_SIZED_ENV } from '../heapSize.js';

const MIB = 2 ** 20;

export class HeapPeak {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor() {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  private sample(): void {
    this.peak = Math.max(this.peak, v8.getHeapStatistics().used_heap_size);
  }

  /** How the heap was sized, when bin/toil.js sized it from the container's memory limit. */
  static sizing(): string | undefined {
    const sized = process.env[HEAP_SIZED_ENV];
    return sized ? `leader heap limit ${sized}` : undefined;
  }

  /** Takes a last sample and stops. */
  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  /** `peak heap used N MiB of L MiB`. */
  summary(): string {
    const limit = v8.getHeapStatistics().heap_size_limit;
    return `peak heap used ${(this.peak / MIB).toFixed(0)} MiB of ${(limit / MIB).toFixed(0)} MiB`;
  }
}
