/**
 * Fetching one small file by URL — a workflow module — from `http(s)://` or `s3://`, bounded
 * in size and time. `s3://` goes through the same client as `wf.importFile` (credentials chain,
 * `AWS_REGION`, `AWS_ENDPOINT_URL_S3`). User names, passwords and query strings never appear in
 * messages: a URL is shown by {@link redactUrl}.
 */
import { createWriteStream } from 'node:fs';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { ToilError, UsageError, errorMessage } from '../errors.js';

export interface FetchLimits {
  maxBytes: number;
  /** For the whole download, connecting included. */
  timeoutMs: number;
}

export const FETCH_LIMITS: FetchLimits = { maxBytes: 10 * 1024 * 1024, timeoutMs: 60_000 };

/** A URL as messages may show it: no user name or password, and `?…` for any query. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1').replace(/[?#].*$/s, (q) => (q.startsWith('?') ? '?…' : ''));
  }
}

interface Opened {
  body: Readable;
  /** Bytes announced by the server, when it says. */
  size?: number;
}

async function openHttp(url: string, signal: AbortSignal): Promise<Opened> {
  const u = new URL(url);
  const headers = new Headers();
  if (u.username || u.password) {
    // fetch refuses credentials in URLs: send them as Basic authentication instead.
    const pair = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    headers.set('authorization', `Basic ${Buffer.from(pair).toString('base64')}`);
    u.username = '';
    u.password = '';
  }
  const res = await fetch(u, { headers, signal });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new UsageError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  if (/^text\/html\b/i.test(res.headers.get('content-type') ?? '')) {
    await res.body.cancel();
    throw new UsageError('the server sent an HTML page, not a module');
  }
  const length = res.headers.get('content-length');
  return { body: Readable.fromWeb(res.body as ReadableStream<Uint8Array>), ...(length ? { size: Number(length) } : {}) };
}

async function openS3(url: string, signal: AbortSignal): Promise<Opened> {
  const { openS3Url } = await import('./s3Urls.js');
  const opening = openS3Url(url);
  // The SDK call cannot be cancelled here: give up waiting, and drop a late answer.
  opening.then(
    (o) => signal.aborted && o.stream.destroy(),
    () => undefined,
  );
  const aborted = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
  const { stream, size } = await Promise.race([opening, aborted]);
  return { body: stream, size };
}

function tooLarge(maxBytes: number): UsageError {
  return new UsageError(`larger than ${maxBytes} bytes`);
}

/** Writes `body` to a new file, failing once more than `maxBytes` have come. */
async function save(body: Readable, dest: string, maxBytes: number, signal: AbortSignal): Promise<number> {
  let n = 0;
  const limit = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      n += chunk.length;
      cb(n > maxBytes ? tooLarge(maxBytes) : null, chunk);
    },
  });
  await pipeline(body, limit, createWriteStream(dest, { flags: 'wx', mode: 0o600 }), { signal });
  return n;
}

function reason(e: unknown, signal: AbortSignal, limits: FetchLimits): string {
  if (signal.aborted) return `no complete answer within ${limits.timeoutMs / 1000} s`;
  if (e instanceof ToilError) return e.message;
  const code = ((e as { cause?: { code?: unknown } }).cause?.code ?? (e as { code?: unknown }).code) as string | undefined;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'the connection was cut';
  const cause = (e as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : errorMessage(e);
}

/**
 * Downloads `url` (`http(s)://` or `s3://`) to the new file `dest` and returns its size. Any
 * failure is a UsageError: "cannot fetch <what> <url>: <reason>".
 */
export async function fetchToFile(url: string, dest: string, opts: { what: string; limits?: FetchLimits }): Promise<number> {
  const limits = opts.limits ?? FETCH_LIMITS;
  const signal = AbortSignal.timeout(limits.timeoutMs);
  try {
    const { body, size } = url.startsWith('s3://') ? await openS3(url, signal) : await openHttp(url, signal);
    if (size !== undefined && size > limits.maxBytes) {
      body.destroy();
      throw tooLarge(limits.maxBytes);
    }
    return await save(body, dest, limits.maxBytes, signal);
  } catch (e) {
    throw new UsageError(`cannot fetch ${opts.what} ${redactUrl(url)}: ${reason(e, signal, limits)}`);
  }
}
