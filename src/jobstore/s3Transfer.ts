/**
 * Streaming files to and from S3 with bounded memory and integrity checks.
 *
 * Uploads go through `@aws-sdk/lib-storage`: the source is cut into parts of `partSize` bytes
 * and at most `queueSize` parts are in flight, so memory is about partSize × (queueSize + 1)
 * whatever the file size. A source of at most one part is sent with one PutObject. If anything
 * fails, the multipart upload is aborted (and aborted again here if that failed), so no object
 * and no parts are left behind; an upload cut short by a killed process leaves only an
 * unfinished multipart upload — never an object — which `destroy` removes.
 *
 * Integrity: each part's MD5 is computed on the way out. S3's ETag of a single-part object is
 * the MD5 of its bytes; of a multipart object, the MD5 of the parts' MD5s followed by `-<parts>`.
 * Uploads compare the ETag S3 returns with those (servers that give multipart objects a plain
 * MD5 ETag cannot be checked at upload time). The part size is kept in the object's metadata
 * (`x-amz-meta-toil-part-size`), so downloads recompute the same digest from the bytes they
 * receive and fail if it differs or if the length is wrong. Objects encrypted with a customer
 * key (SSE-C) have ETags that are not MD5s: those are checked for length only.
 *
 * Downloads survive connections cut mid-body: the rest is fetched with a Range request pinned
 * to the same object with If-Match, and the digest continues over the resumed bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { JobStoreError, NotFoundError, TransientError } from '../errors.js';
import { isNotFound, unquote, type S3Bucket } from './s3Bucket.js';
import { backoffDelay, isRetryableS3Error, sleep } from './s3Retry.js';

export const PART_SIZE_META = 'toil-part-size';

/** MD5s of consecutive parts of `partSize` bytes. */
export class PartDigests {
  private readonly partSize: number;
  private readonly digests: Buffer[] = [];
  private current: Hash = createHash('md5');
  private inPart = 0;
  size = 0;

  constructor(partSize: number) {
    this.partSize = partSize;
  }

  update(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(chunk.length - off, this.partSize - this.inPart);
      this.current.update(off === 0 && take === chunk.length ? chunk : chunk.subarray(off, off + take));
      this.inPart += take;
      off += take;
      if (this.inPart === this.partSize) {
        this.digests.push(this.current.digest());
        this.current = createHash('md5');
        this.inPart = 0;
      }
    }
    this.size += chunk.length;
  }

  /** The part digests (an empty source has one part: the MD5 of nothing). */
  finish(): Buffer[] {
    if (this.inPart > 0 || this.digests.length === 0) {
      this.digests.push(this.current.digest());
      this.inPart = 0;
    }
    return this.digests;
  }
}

/** The ETag S3 gives an object uploaded in these parts. */
export function expectedEtag(parts: Buffer[], multipart: boolean): string {
  if (!multipart) return parts[0]!.toString('hex');
  return `${createHash('md5').update(Buffer.concat(parts)).digest('hex')}-${parts.length}`;
}

export interface UploadOptions {
  partSize: number;
  queueSize: number;
  metadata?: Record<string, string>;
  contentType?: string;
}

/** Streams a source into `key`; returns the size and ETag of the stored object. */
export async function uploadObject(bucket: S3Bucket, key: string, source: Readable | Buffer, opts: UploadOptions): Promise<{ size: number; etag: string }> {
  const digests = new PartDigests(opts.partSize);
  let body: Readable | Buffer;
  if (Buffer.isBuffer(source)) {
    digests.update(source);
    body = source;
  } else {
    const hasher = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        digests.update(chunk);
        cb(null, chunk);
      },
    });
    source.once('error', (e) => hasher.destroy(e));
    body = source.pipe(hasher);
  }
  const upload = new Upload({
    client: bucket.client,
    partSize: opts.partSize,
    queueSize: opts.queueSize,
    leavePartsOnError: false,
    params: {
      Bucket: bucket.name,
      Key: key,
      Body: body,
      Metadata: { ...opts.metadata, [PART_SIZE_META]: String(opts.partSize) },
      ContentType: opts.contentType ?? 'application/octet-stream',
      ...(bucket.sse ?? {}),
    },
  });
  let etag: string;
  try {
    const out = await upload.done();
    if (typeof out.ETag !== 'string') throw new JobStoreError('JOBSTORE', `upload of ${key}: the response has no ETag`);
    etag = unquote(out.ETag);
  } catch (e) {
    if (upload.uploadId) await bucket.abortUpload(key, upload.uploadId).catch(() => {});
    if (!Buffer.isBuffer(source)) source.destroy();
    throw bucket.fail(e, `uploading ${key}`);
  }
  const parts = digests.finish();
  if (!bucket.sse) {
    const m = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
    const want = m ? expectedEtag(parts, true) : parts.length === 1 ? expectedEtag(parts, false) : undefined;
    if (want !== undefined && want !== etag) {
      await bucket.delete(key).catch(() => {});
      throw new JobStoreError('JOBSTORE', `upload of ${key} was corrupted on the way (ETag ${etag}, expected ${want}); nothing was stored`);
    }
  }
  return { size: digests.size, etag };
}

/** Checks the bytes of a download against the object's ETag. */
class DownloadCheck {
  private readonly parts: PartDigests | undefined;
  private readonly whole: Hash | undefined;
  private readonly etag: string;
  private readonly expectedSize: number;
  private received = 0;

  constructor(etag: string, size: number, metadata: Record<string, string>, encrypted: boolean) {
    this.etag = etag;
    this.expectedSize = size;
    const multi = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
    const partSize = Number(metadata[PART_SIZE_META]);
    if (encrypted) return;
    if (multi && Number.isInteger(partSize) && partSize > 0) this.parts = new PartDigests(partSize);
    else if (/^[0-9a-f]{32}$/.test(etag)) this.whole = createHash('md5');
  }

  update(chunk: Buffer): void {
    this.received += chunk.length;
    this.parts?.update(chunk);
    this.whole?.update(chunk);
  }

  get offset(): number {
    return this.received;
  }

  /** Throws if the bytes received are not the object's. */
  finish(key: string): void {
    if (this.received !== this.expectedSize) {
      throw new TransientError(`download of ${key}: got ${this.received} bytes, the object has ${this.expectedSize}`);
    }
    let got: string | undefined;
    if (this.parts) got = expectedEtag(this.parts.finish(), true);
    else if (this.whole) got = this.whole.digest('hex');
    if (got !== undefined && got !== this.etag) {
      throw new JobStoreError('JOBSTORE', `download of ${key} is corrupt: its digest is ${got}, S3 says ${this.etag}`);
    }
  }
}

const MAX_RESUMES = 10;

/**
 * Opens `key` for reading: a stream of its bytes, checked against its ETag at the end, resumed
 * where it stopped if the connection breaks. Fails with NotFoundError if there is no such object.
 */
export async function downloadObject(bucket: S3Bucket, key: string, what: string): Promise<{ stream: Readable; size: number }> {
  let first: GetObjectCommandOutput;
  try {
    first = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: key, ...(bucket.sse ?? {}) }));
  } catch (e) {
    if (isNotFound(e)) throw new NotFoundError(`${what} does not exist in ${bucket.what}`);
    throw bucket.fail(e, `reading ${key}`);
  }
  if (typeof first.ETag !== 'string' || typeof first.ContentLength !== 'number' || !first.Body) {
    (first.Body as Readable | undefined)?.destroy?.();
    throw new JobStoreError('JOBSTORE', `GET ${key}: the response lacks an ETag, a Content-Length or a body`);
  }
  const etag = unquote(first.ETag);
  const size = first.ContentLength;
  const check = new DownloadCheck(etag, size, first.Metadata ?? {}, bucket.sse !== undefined);
  let body = first.Body as Readable;

  async function* bytes(): AsyncGenerator<Buffer> {
    let resumes = 0;
    try {
      for (;;) {
        try {
          for await (const c of body) {
            const chunk = c as Buffer;
            check.update(chunk);
            yield chunk;
          }
          if (check.offset < size) throw new TransientError(`download of ${key} ended early`);
          break;
        } catch (e) {
          if (!isRetryableS3Error(e) && !(e instanceof TransientError)) throw e;
          if (++resumes > MAX_RESUMES) throw bucket.fail(e, `reading ${key}`);
          body.destroy();
          await sleep(backoffDelay(resumes, bucket.retry));
          if (check.offset >= size) break;
          let next: GetObjectCommandOutput;
          try {
            next = await bucket.client.send(
              new GetObjectCommand({ Bucket: bucket.name, Key: key, Range: `bytes=${check.offset}-`, IfMatch: `"${etag}"`, ...(bucket.sse ?? {}) }),
            );
          } catch (e2) {
            if (isNotFound(e2)) throw new NotFoundError(`${what} was deleted while it was being read`);
            throw bucket.fail(e2, `resuming ${key}`);
          }
          if (!next.Body) throw new JobStoreError('JOBSTORE', `GET ${key}: the response has no body`);
          body = next.Body as Readable;
        }
      }
      check.finish(key);
    } finally {
      body.destroy();
    }
  }
  return { stream: Readable.from(bytes(), { objectMode: false }), size };
}
