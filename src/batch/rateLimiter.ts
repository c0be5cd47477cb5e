/**
 * A client-side token bucket for API requests: `qps` tokens a second, at most `burst` saved up.
 * Requests wait their turn in order.
 */
import { sleep } from '../concurrency.js';
import { UsageError } from '../errors.js';

export class RateLimiter {
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!(qps > 0) || !(burst >= 1))
      throw new UsageError(`--kubernetesQps must be > 0 and --kubernetesBurst ≥ 1 (got ${qps} and ${burst})`);
    this.tokens = burst;
    this.last = now();
  }

  /** Milliseconds until a token is free if one were taken now (0 if one is free). */
  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
  }

  /** Resolves when the caller may send one request. */
  take(): Promise<void> {
    const turn = this.queue.then(async () => {
      this.refill();
      if (this.tokens < 1) {
        const wait = ((1 - this.tokens) / this.qps) * 1000;
        await sleep(wait);
        this.refill();
      }
      this.tokens -= 1;
    });
    this.queue = turn;
    return turn;
  }
}
