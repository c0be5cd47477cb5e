/**
 * Retry policy: exponential backoff with full jitter kept in the upper half, so retries of
 * many failed jobs spread out without ever coming back sooner than half the nominal delay.
 */
export interface BackoffPolicy {
  /** Delay before the first retry, in seconds. */
  baseSeconds: number;
  /** Upper bound for any delay, in seconds. */
  maxSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseSeconds: 1, maxSeconds: 300 };

/**
 * Milliseconds to wait before retry number `retry` (1 for the first retry). `random` returns a
 * number in [0, 1) (injectable for tests).
 */
export function retryDelayMs(retry: number, policy: BackoffPolicy = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  if (policy.baseSeconds <= 0) return 0;
  const nominal = Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.max(0, retry - 1));
  return Math.round(nominal * 1000 * (0.5 + random() / 2));
}
