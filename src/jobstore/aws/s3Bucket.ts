/**
 * One bucket, seen through the few S3 operations the job store needs: small whole-object
 * reads and writes (with optional conditions), heads, deletes, paginated listings, and multipart
 * upload housekeeping. Every response field the store relies on is checked here; S3 errors
 * become toil-ts errors (a missing bucket is a missing job store; transient trouble that
 * survived the SDK's retries is a TransientError). Every request carries the caller's request
 * signal, if any (`requestSignal.ts`).
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { JobStoreError, TransientError, errorMessage } from '../../errors.js';
import { abandonedError, requestSignal } from '../requestSignal.js';
import { httpStatus, isRetryableS3Error, s3ErrorName, withRetry, type BackoffOptions } from './s3Retry.js';
import type { SseCustomerKey } from './s3Client.js';

export interface ListedObject {
  key: string;
  lastModified: Date;
  size: number;
}

export type PutOutcome = { ok: true; etag: string } | { ok: false; reason: 'precondition' | 'missing' };

/** Removes the quotes S3 puts around ETags. */
export function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/"/g, '');
}

export function isNotFound(e: unknown): boolean {
  const n = s3ErrorName(e);
  return n === 'NoSuchKey' || n === 'NotFound' || (httpStatus(e) === 404 && n !== 'NoSuchBucket' && n !== 'NoSuchUpload');
}

export function isNoSuchBucket(e: unknown): boolean {
  return s3ErrorName(e) === 'NoSuchBucket';
}

export class S3Bucket {
  readonly client: S3Client;
  readonly name: string;
  readonly sse: SseCustomerKey | undefined;
  readonly retry: BackoffOptions;
  /** What to call the store in messages (its locator). */
  readonly what: string;
  private readonly pageSize: number | undefined;

  constructor(client: S3Client, name: string, opts: { sse?: SseCustomerKey; retry?: BackoffOptions; what: string; pageSize?: number }) {
    this.client = client;
    this.name = name;
    this.sse = opts.sse;
    this.retry = opts.retry ?? {};
    this.what = opts.what;
    this.pageSize = opts.pageSize;
  }

  /** Turns an S3 failure into a toil-ts error. */
  fail(e: unknown, doing: string): Error {
    if (e instanceof JobStoreError || e instanceof TransientError) return e;
    const signal = requestSignal();
    if (signal?.aborted) return abandonedError(`${doing} in bucket ${this.name}`, signal, e);
    if (isNoSuchBucket(e)) {
      return new JobStoreError('JOBSTORE_MISSING', `job store ${this.what} does not exist (no bucket ${this.name})`, { cause: e });
    }
    const name = s3ErrorName(e) ?? 'error';
    const status = httpStatus(e);
    const detail = `${doing} in bucket ${this.name}: ${name}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(e)}`;
    if (
      status === 401 ||
      status === 403 ||
      ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'CredentialsProviderError'].includes(
        name,
      )
    ) {
      const what = status === 403 && name === 'Unknown' ? `${doing} in bucket ${this.name}: access denied (HTTP 403)` : detail;
      return new JobStoreError(
        'JOBSTORE',
        `${what} — check the AWS credentials (environment, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, /root/.aws, IAM role) and their permissions on bucket ${this.name}`,
        { cause: e },
      );
    }
    if (isRetryableS3Error(e)) return new TransientError(detail, { cause: e });
    return new JobStoreError('JOBSTORE', detail, { cause: e });
  }

  private get sseParams(): Partial<SseCustomerKey> {
    return this.sse ?? {};
  }

  /** The SDK's options for one request: the caller's request signal, and a deadline of its own. */
  private sendOptions(deadlineMs?: number): { abortSignal?: AbortSignal } {
    const deadline = deadlineMs !== undefined ? AbortSignal.timeout(Math.max(1, Math.floor(deadlineMs))) : undefined;
    const caller = requestSignal();
    const signal = caller && deadline ? AbortSignal.any([caller, deadline]) : (caller ?? deadline);
    return signal ? { abortSignal: signal } : {};
  }

  /** Reads a whole (small) object, or undefined if there is none. */
  async getSmall(key: string): Promise<{ body: Buffer; etag: string; metadata: Record<string, string> } | undefined> {
    try {
      return await withRetry(async () => {
        let out;
        try {
          out = await this.client.send(new GetObjectCommand({ Bucket: this.name, Key: key, ...this.sseParams }), this.sendOptions());
        } catch (e) {
          if (isNotFound(e)) return undefined;
          throw e;
        }
        if (!out.Body) throw new JobStoreError('JOBSTORE', `GET ${key}: the response has no body`);
        if (typeof out.ETag !== 'string') throw new JobStoreError('JOBSTORE', `GET ${key}: the response has no ETag`);
        const chunks: Buffer[] = [];
        for await (const c of out.Body as Readable) chunks.push(Buffer.from(c as Uint8Array));
        const body = Buffer.concat(chunks);
        if (typeof out.ContentLength === 'number' && out.ContentLength !== body.length) {
          throw new TransientError(`GET ${key}: got ${body.length} of ${out.ContentLength} bytes`);
        }
        return { body, etag: unquote(out.ETag), metadata: out.Metadata ?? {} };
      }, this.retry);
    } catch (e) {
      throw this.fail(e, `reading ${key}`);
    }
  }

  /** Size, ETag and metadata of an object, or undefined if there is none. */
  async head(key: string): Promise<{ size: number; etag: string; metadata: Record<string, string> } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ...this.sseParams }), this.sendOptions());
      if (typeof out.ContentLength !== 'number' || typeof out.ETag !== 'string') {
        throw new JobStoreError('JOBSTORE', `HEAD ${key}: the response lacks Content-Length or ETag`);
      }
      return { size: out.ContentLength, etag: unquote(out.ETag), metadata: out.Metadata ?? {} };
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.fail(e, `looking up ${key}`);
    }
  }

  /**
   * Writes a whole object. `ifNoneMatch`: only if there is no such object; `ifMatch`: only if the
   * object's ETag is this one. A failed condition is an outcome, not an error.
   */
  async put(
    key: string,
    body: Buffer,
    cond: { ifMatch?: string; ifNoneMatch?: boolean; metadata?: Record<string, string>; deadlineMs?: number } = {},
  ): Promise<PutOutcome> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.name,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ...(cond.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
          ...(cond.ifMatch !== undefined ? { IfMatch: `"${cond.ifMatch}"` } : {}),
          ...(cond.metadata ? { Metadata: cond.metadata } : {}),
          ...this.sseParams,
        }),
        this.sendOptions(cond.deadlineMs),
      );
      if (typeof out.ETag !== 'string') throw new JobStoreError('JOBSTORE', `PUT ${key}: the response has no ETag`);
      return { ok: true, etag: unquote(out.ETag) };
    } catch (e) {
      const status = httpStatus(e);
      const name = s3ErrorName(e);
      if (status === 412 || name === 'PreconditionFailed') return { ok: false, reason: 'precondition' };
      if (cond.ifMatch !== undefined && isNotFound(e)) return { ok: false, reason: 'missing' };
      if (requestSignal()?.aborted) throw this.fail(e, `writing ${key}`);
      if (cond.deadlineMs !== undefined && (name === 'AbortError' || name === 'TimeoutError')) {
        throw new TransientError(
          `writing ${key} in bucket ${this.name} took longer than ${Math.round(cond.deadlineMs)} ms and was abandoned; it may or may not have happened`,
          {
            cause: e,
            context: { deadline: true },
          },
        );
      }
      throw this.fail(e, `writing ${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key }), this.sendOptions());
    } catch (e) {
      if (isNotFound(e)) return;
      throw this.fail(e, `deleting ${key}`);
    }
  }

  /** Deletes many objects, 1000 per request. */
  async deleteMany(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      if (batch.length === 1) {
        await this.delete(batch[0]!);
        continue;
      }
      let out;
      try {
        out = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } }),
          this.sendOptions(),
        );
      } catch (e) {
        throw this.fail(e, `deleting ${batch.length} objects`);
      }
      const errors = (out.Errors ?? []).filter((x) => x.Code !== 'NoSuchKey');
      if (errors.length > 0) {
        // Retry the ones that failed, one by one (transient per-key errors are possible on AWS).
        for (const err of errors) if (err.Key) await this.delete(err.Key);
      }
    }
  }

  /** Every object under a prefix, in key order, page by page. */
  async *list(prefix: string): AsyncIterable<ListedObject> {
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.name,
            Prefix: prefix,
            ...(this.pageSize ? { MaxKeys: this.pageSize } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          this.sendOptions(),
        );
      } catch (e) {
        throw this.fail(e, `listing ${prefix || '/'}`);
      }
      for (const o of out.Contents ?? []) {
        if (typeof o.Key !== 'string') throw new JobStoreError('JOBSTORE', `listing ${prefix}: an entry has no key`);
        yield { key: o.Key, lastModified: o.LastModified instanceof Date ? o.LastModified : new Date(0), size: o.Size ?? 0 };
      }
      if (out.IsTruncated) {
        if (!out.NextContinuationToken)
          throw new JobStoreError('JOBSTORE', `listing ${prefix}: truncated page without a continuation token`);
        token = out.NextContinuationToken;
      } else token = undefined;
    } while (token);
  }

  /** Unfinished multipart uploads (key, upload id) under a prefix. */
  async listUploads(prefix = ''): Promise<Array<{ key: string; uploadId: string }>> {
    const found: Array<{ key: string; uploadId: string }> = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      let out;
      try {
        out = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.name,
            ...(prefix ? { Prefix: prefix } : {}),
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(idMarker ? { UploadIdMarker: idMarker } : {}),
          }),
          this.sendOptions(),
        );
      } catch (e) {
        throw this.fail(e, 'listing unfinished uploads');
      }
      for (const u of out.Uploads ?? []) if (u.Key && u.UploadId) found.push({ key: u.Key, uploadId: u.UploadId });
      if (!out.IsTruncated) return found;
      keyMarker = out.NextKeyMarker;
      idMarker = out.NextUploadIdMarker;
      if (!keyMarker && !idMarker) return found;
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }), this.sendOptions());
    } catch (e) {
      if (s3ErrorName(e) === 'NoSuchUpload' || httpStatus(e) === 404) return;
      throw this.fail(e, `aborting the upload of ${key}`);
    }
  }
}
