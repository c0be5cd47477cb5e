/**
 * Retrying S3 requests: which failures are transient, and a backoff strategy for the AWS SDK.
 * The AWS error codes and the backoff are shared with the SimpleDB client (`simpledb/client.ts`).
 *
 * The SDK's own standard strategy keeps a retry quota (a token bucket shared by the client):
 * a long workflow against a throttling endpoint drains it and then fails requests outright. Ours
 * has no quota: every request gets `maxAttempts` tries with capped exponential backoff and full
 * jitter, longer for throttling. Each request body the store sends is a Buffer (records) or a
 * Buffer part (lib-storage), so every retry resends the same bytes.
 *
 * What the SDK cannot retry (an error while reading a response body it has already handed
 * over, e.g. a connection cut in the middle of a download) is retried by the caller with
 * {@link withRetry} or by resuming the download (see `s3Transfer.ts`).
 */
import { backoffDelayMs } from '../../backoff.js';
import { pause } from '../requestSignal.js';
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';

/** AWS error codes worth another try, for S3 and SimpleDB alike (QueryTimeout is SimpleDB's). */
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'QueryTimeout',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'BandwidthLimitExceeded',
  'EC2ThrottledException',
  'ConditionalRequestConflict',
  'OperationAborted',
]);
const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);
const THROTTLING = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

/** Whether an AWS error code (S3's or SimpleDB's) names a failure worth another try. */
export function isRetryableAwsCode(code: string): boolean {
  return RETRYABLE_NAMES.has(code);
}

/** Whether an AWS error code names throttling (the backoff then waits longer). */
export function isThrottlingCode(code: string): boolean {
  return THROTTLING.has(code);
}

function field(e: unknown, name: string): unknown {
  return typeof e === 'object' && e !== null ? (e as Record<string, unknown>)[name] : undefined;
}

/** The HTTP status of an SDK error, if it has one. */
export function httpStatus(e: unknown): number | undefined {
  const md = field(e, '$metadata');
  const s = field(md, 'httpStatusCode');
  return typeof s === 'number' ? s : undefined;
}

/** The S3 error code (`NoSuchKey`, `PreconditionFailed`, …) of an SDK error. */
export function s3ErrorName(e: unknown): string | undefined {
  const n = field(e, 'Code') ?? field(e, 'name');
  return typeof n === 'string' ? n : undefined;
}

/** Whether a failed S3 request (or a broken response stream) is worth trying again. */
export function isRetryableS3Error(e: unknown): boolean {
  if (e === null || e === undefined) return false;
  const name = s3ErrorName(e);
  if (name === 'AbortError') return false;
  if (name !== undefined && RETRYABLE_NAMES.has(name)) return true;
  const code = field(e, 'code');
  if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
  const status = httpStatus(e);
  if (status !== undefined && RETRYABLE_STATUS.has(status)) return true;
  const msg = e instanceof Error ? e.message : '';
  if (/socket hang up|aborted|premature close|ECONNRESET|EPIPE|other side closed|terminated/i.test(msg)) return true;
  const cause = field(e, 'cause');
  return cause !== undefined && cause !== e && isRetryableS3Error(cause);
}

export interface BackoffOptions {
  /** Tries per request, the first included (default 10). */
  maxAttempts?: number;
  /** Base delay in ms (default 50); throttling uses 4 times as much. */
  baseDelayMs?: number;
  /** Longest single delay in ms (default 5000). */
  maxDelayMs?: number;
}

/** The delay before retry number `retry` of an S3 request (the shared policy; throttling waits 4 times longer). */
export function backoffDelay(retry: number, opts: BackoffOptions = {}, throttled = false): number {
  return backoffDelayMs(retry, { baseMs: (opts.baseDelayMs ?? 50) * (throttled ? 4 : 1), maxMs: opts.maxDelayMs ?? 5000 });
}

class Token implements RetryToken {
  private readonly count: number;
  private readonly delay: number;
  constructor(count: number, delay: number) {
    this.count = count;
    this.delay = delay;
  }
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

/** An SDK retry strategy: no retry quota, capped exponential backoff with jitter. */
export class BackoffRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'standard';
  private readonly maxAttempts: number;
  private readonly opts: BackoffOptions;

  constructor(opts: BackoffOptions = {}) {
    this.opts = opts;
    this.maxAttempts = opts.maxAttempts ?? 10;
  }

  async acquireInitialRetryToken(_scope: string): Promise<RetryToken> {
    return new Token(0, 0);
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const retries = token.getRetryCount() + 1;
    const retryable =
      info.errorType === 'THROTTLING' ||
      info.errorType === 'TRANSIENT' ||
      info.errorType === 'SERVER_ERROR' ||
      isRetryableS3Error(info.error);
    if (!retryable || retries >= this.maxAttempts) throw new Error('no more retries');
    const throttled = info.errorType === 'THROTTLING' || THROTTLING.has(s3ErrorName(info.error) ?? '');
    return new Token(retries, backoffDelay(retries, this.opts, throttled));
  }

  recordSuccess(_token: RetryToken): void {}
}

/**
 * Runs `fn` until it succeeds, retrying transient S3 failures with backoff (for work the SDK
 * cannot retry by itself, such as reading a response body to the end). The pauses end when the
 * caller's request signal aborts (`requestSignal.ts`).
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: BackoffOptions = {}): Promise<T> {
  const max = opts.maxAttempts ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= max || !isRetryableS3Error(e)) throw e;
      await pause(backoffDelay(attempt, opts, THROTTLING.has(s3ErrorName(e) ?? '')), 'an S3 request');
    }
  }
}
