/**
 * Being a good API citizen: every request waits for the client-side rate limiter, and
 * transient failures (429 with its Retry-After, in seconds or as an HTTP date, 5xx, connection
 * errors) are retried with exponential backoff and jitter. Other 4xx answers are reported at once.
 */
import { backoffDelayMs, type BackoffPolicy } from '../backoff.js';
import { sleep } from '../concurrency.js';
import { ToilError } from '../errors.js';
import { retryAfterMs } from '../httpDate.js';
import type { RateLimiter } from './rateLimiter.js';

export interface ApiErrorInfo {
  /** HTTP status, or undefined for a connection-level failure. */
  status: number | undefined;
  message: string;
  retryAfterMs?: number;
}

/** Reads an error thrown by client-node (ApiException: `.code`, `.body`, `.headers`) or fetch. */
export function apiErrorInfo(e: unknown): ApiErrorInfo {
  const err = e as { code?: unknown; statusCode?: unknown; body?: unknown; headers?: Record<string, string>; message?: string };
  const status = typeof err.code === 'number' ? err.code : typeof err.statusCode === 'number' ? err.statusCode : undefined;
  let message = err.message ?? String(e);
  if (typeof err.body === 'string') {
    try {
      const parsed = JSON.parse(err.body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      /* not JSON */
    }
  } else if (err.body && typeof err.body === 'object' && typeof (err.body as { message?: unknown }).message === 'string') {
    message = (err.body as { message: string }).message;
  }
  const ra = err.headers?.['retry-after'] ?? err.headers?.['Retry-After'];
  const wait = typeof ra === 'string' ? retryAfterMs(ra) : undefined;
  return { status, message, ...(wait !== undefined ? { retryAfterMs: wait } : {}) };
}

export function isTransient(info: ApiErrorInfo): boolean {
  return info.status === undefined || info.status === 429 || info.status >= 500;
}

/** An API request that failed for good. */
export class KubernetesApiError extends ToilError {
  constructor(
    readonly what: string,
    readonly info: ApiErrorInfo,
  ) {
    super(
      isTransient(info) ? 'TRANSIENT' : 'INTERNAL',
      `Kubernetes API: ${what} failed${info.status ? ` (HTTP ${info.status})` : ''}: ${info.message}`,
      { retryable: isTransient(info), context: { status: info.status } },
    );
  }
}

export interface RetryPolicy extends BackoffPolicy {
  attempts: number;
}

export const DEFAULT_API_RETRY: RetryPolicy = { attempts: 8, baseMs: 200, maxMs: 15_000 };

/**
 * Runs one API request through the limiter, retrying transient failures. `accept` may turn an
 * error into a value (e.g. 409 on a create that an earlier try already made).
 */
export async function apiCall<T>(
  what: string,
  limiter: RateLimiter,
  fn: () => Promise<T>,
  opts: {
    policy?: RetryPolicy;
    accept?: (info: ApiErrorInfo) => T | undefined;
    onRetry?: (info: ApiErrorInfo, delayMs: number) => void;
    /** No further try once aborted (a request already sent is not recalled). */
    signal?: AbortSignal;
  } = {},
): Promise<T> {
  const policy = opts.policy ?? DEFAULT_API_RETRY;
  for (let attempt = 1; ; attempt++) {
    await limiter.take();
    if (opts.signal?.aborted) throw new KubernetesApiError(what, { status: undefined, message: 'not tried again: cancelled' });
    try {
      return await fn();
    } catch (e) {
      const info = apiErrorInfo(e);
      const accepted = opts.accept?.(info);
      if (accepted !== undefined) return accepted;
      if (!isTransient(info) || attempt >= policy.attempts) throw new KubernetesApiError(what, info);
      const delay = backoffDelayMs(attempt, policy, { floorMs: info.retryAfterMs ?? 0 });
      opts.onRetry?.(info, delay);
      await sleep(delay);
    }
  }
}
