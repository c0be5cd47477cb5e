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
 * Integrity, two ways:
 * - **CRC-32 of the content** (job store files): computed on the way up (cheap: zlib's CRC-32 runs
 *   at several GB/s) and returned to the caller, which keeps it in the file id; downloads
 *   recompute it and fail if it differs or if the length is wrong. This covers corruption
 *   anywhere between the writer and the reader, also with SSE-C, and adds no request.
 * - **MD5 against the ETag** (objects the store did not write, e.g. `s3://` imports, and
 *   `s3://` exports): S3's ETag of a single-part object is the MD5 of its bytes; of a multipart
 *   object, the MD5 of the parts' MD5s followed by `-<parts>`. Exports compare the ETag S3
 *   returns with the MD5s of the parts sent; imports recompute the ETag from the bytes received
 *   when they can (a plain MD5, or `-N` with the part size in `x-amz-meta-toil-part-size`).
 *   ETags of SSE-C objects are not MD5s and are not checked.
 *
 * Downloads survive connections cut mid-body: the rest is fetched with a Range request pinned
 * to the same object with If-Match, and the digests continue over the resumed bytes.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { GetObjectCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { JobStoreError, NotFoundError, TransientError } from '../../errors.js';
import { isNotFound, unquote, type S3Bucket } from './s3Bucket.js';
import { sleep } from '../../concurrency.js';
import { backoffDelay, isRetryableS3Error } from './s3Retry.js';

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
  /** Also compute part MD5s and compare them with the ETag S3 returns (costs CPU). */
  checkEtag?: boolean;
}

/** Streams a source into `key`; returns the size, ETag and CRC-32 of what was sent. */
export async function uploadObject(
  bucket: S3Bucket,
  key: string,
  source: Readable | Buffer,
  opts: UploadOptions,
): Promise<{ size: number; etag: string; crc32: number }> {
  const digests = opts.checkEtag ? new PartDigests(opts.partSize) : undefined;
  let crc = 0;
  let size = 0;
  let body: Readable | Buffer;
  if (Buffer.isBuffer(source)) {
    digests?.update(source);
    crc = crc32(source);
    size = source.length;
    body = source;
  } else {
    const hasher = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
        digests?.update(chunk);
        crc = crc32(chunk, crc);
        size += chunk.length;
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
  if (digests && !bucket.sse) {
    const parts = digests.finish();
    const m = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
    const want = m ? expectedEtag(parts, true) : parts.length === 1 ? expectedEtag(parts, false) : undefined;
    if (want !== undefined && want !== etag) {
      await bucket.delete(key).catch(() => {});
      throw new JobStoreError('JOBSTORE', `upload of ${key} was corrupted on the way (ETag ${etag}, expected ${want}); nothing was stored`);
    }
  }
  return { size, etag, crc32: crc };
}

/** Checks the bytes of a download against the CRC-32 the caller knows, or the object's ETag. */
class DownloadCheck {
  private readonly parts: PartDigests | undefined;
  private readonly whole: Hash | undefined;
  private readonly etag: string;
  private readonly expectedSize: number;
  private readonly expectedCrc: number | undefined;
  private crc = 0;
  private received = 0;

  constructor(etag: string, size: number, metadata: Record<string, string>, encrypted: boolean, expectedCrc: number | undefined) {
    this.etag = etag;
    this.expectedSize = size;
    this.expectedCrc = expectedCrc;
    const multi = /^[0-9a-f]{32}-(\d+)$/.exec(etag);
    const partSize = Number(metadata[PART_SIZE_META]);
    if (encrypted || expectedCrc !== undefined) return;
    if (multi && Number.isInteger(partSize) && partSize > 0) this.parts = new PartDigests(partSize);
    else if (/^[0-9a-f]{32}$/.test(etag)) this.whole = createHash('md5');
  }

  update(chunk: Buffer): void {
    this.received += chunk.length;
    if (this.expectedCrc !== undefined) this.crc = crc32(chunk, this.crc);
    this.parts?.update(chunk);
    this.whole?.update(chunk);
  }

  /** Throws if the bytes received are not the object's. */
  finish(key: string): void {
    if (this.received !== this.expectedSize) {
      throw new TransientError(`download of ${key}: got ${this.received} bytes, the object has ${this.expectedSize}`);
    }
    if (this.expectedCrc !== undefined && this.crc !== this.expectedCrc) {
      throw new JobStoreError(
        'JOBSTORE',
        `download of ${key} is corrupt: its CRC-32 is ${hex8(this.crc)}, it was written with ${hex8(this.expectedCrc)}`,
      );
    }
    let got: string | undefined;
    if (this.parts) got = expectedEtag(this.parts.finish(), true);
    else if (this.whole) got = this.whole.digest('hex');
    if (got !== undefined && got !== this.etag) {
      throw new JobStoreError('JOBSTORE', `download of ${key} is corrupt: its digest is ${got}, S3 says ${this.etag}`);
    }
  }
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

const MAX_RESUMES = 10;

/**
 * Opens `key` for reading: a stream of its bytes, checked at the end (against `expect.crc32`,
 * or else against its ETag), resumed
 * where it stopped if the connection breaks. Fails with NotFoundError if there is no such object.
 */
export async function downloadObject(
  bucket: S3Bucket,
  key: string,
  what: string,
  expect: { crc32?: number } = {},
): Promise<{ stream: Readable; size: number }> {
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
  const check = new DownloadCheck(etag, size, first.Metadata ?? {}, bucket.sse !== undefined, expect.crc32);
  // Bytes flow from the current response body into `out`, which checks them in order; if the
  // body breaks, a new response for the remaining range takes its place.
  let body = first.Body as Readable;
  let received = 0;
  let resumes = 0;
  const out = new Transform({
    // Room for a few socket reads on each side, so the body is not paused after every chunk.
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      check.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      try {
        check.finish(key);
        cb();
      } catch (e) {
        cb(e as Error);
      }
    },
  });
  out.on('drain', () => body.resume());
  out.on('close', () => body.destroy());

  const resume = async (e: unknown): Promise<void> => {
    body.removeAllListeners('data');
    body.on('error', () => {});
    body.destroy();
    if (out.destroyed) return;
    try {
      if (!isRetryableS3Error(e) && !(e instanceof TransientError)) throw e;
      if (++resumes > MAX_RESUMES) throw bucket.fail(e, `reading ${key}`);
      await sleep(backoffDelay(resumes, bucket.retry));
      if (received >= size) {
        out.end();
        return;
      }
      let next: GetObjectCommandOutput;
      try {
        next = await bucket.client.send(
          new GetObjectCommand({ Bucket: bucket.name, Key: key, Range: `bytes=${received}-`, IfMatch: `"${etag}"`, ...(bucket.sse ?? {}) }),
        );
      } catch (e2) {
        if (isNotFound(e2)) throw new NotFoundError(`${what} was deleted while it was being read`);
        throw bucket.fail(e2, `resuming ${key}`);
      }
      if (!next.Body) throw new JobStoreError('JOBSTORE', `GET ${key}: the response has no body`);
      if (out.destroyed) {
        (next.Body as Readable).destroy();
        return;
      }
      attach(next.Body as Readable);
    } catch (err) {
      out.destroy(err as Error);
    }
  };

  const attach = (b: Readable): void => {
    body = b;
    let settled = false;
    b.on('data', (c: Buffer) => {
      received += c.length;
      if (!out.write(c)) b.pause();
    });
    b.once('end', () => {
      if (settled) return;
      settled = true;
      if (received >= size) out.end();
      else void resume(new TransientError(`download of ${key} ended early`));
    });
    b.once('error', (err) => {
      if (settled) return;
      settled = true;
      void resume(err);
    });
  };
  attach(body);
  return { stream: out, size };
}
