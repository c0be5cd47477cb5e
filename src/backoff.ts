/**
 * The one backoff policy of toil-ts, for everything that waits before trying again — a failed
 * job's retry, an S3 request, a Kubernetes API call, a dropped watch:
 *
 * - the nominal delay doubles from `baseMs` with each further retry, up to `maxMs`;
 * - the actual delay is drawn from the upper half of the nominal one, [½·nominal, nominal], so
 *   that many retries spread out and none comes back sooner than half the nominal delay;
 * - a server's own answer (Retry-After) is a floor: never retry sooner than it asked.
 */
export interface BackoffPolicy {
  /** Nominal delay before the first retry, in ms (0: no waiting). */
  baseMs: number;
  /** Upper bound of the nominal delay, in ms. */
  maxMs: number;
}

/**
 * Milliseconds to wait before retry number `retry` (1 for the first retry). `random` returns a
 * number in [0, 1) (injectable for tests); `floorMs` is the least the server asked for.
 */
export function backoffDelayMs(retry: number, policy: BackoffPolicy, opts: { random?: () => number; floorMs?: number } = {}): number {
  const floor = opts.floorMs ?? 0;
  if (policy.baseMs <= 0) return floor;
  const nominal = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(Math.max(0, retry - 1), 30));
  return Math.max(floor, Math.round(nominal * (0.5 + (opts.random ?? Math.random)() / 2)));
}
