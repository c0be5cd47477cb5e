/**
 * `s3://bucket/key` URLs for `wf.importFile` / `exportFile`: streamed copies between a user's
 * bucket and the job store, with the job store's transfer code (multipart, bounded memory,
 * retries, resumed and checked downloads).
 *
 * The client is the SDK's default: credentials from the default provider chain, the region from
 * `AWS_REGION` (or `us-east-1`) with redirects followed to the bucket's own region, and
 * `AWS_ENDPOINT_URL_S3` for S3-compatible stores.
 */
import type { Readable } from 'node:stream';
import { JobStoreError, NotFoundError, UsageError } from '../errors.js';
import type { FileID } from '../job/types.js';
import { S3Bucket } from '../jobstore/aws/s3Bucket.js';
import { makeS3Client, s3SettingsFromEnv, type S3Settings } from '../jobstore/aws/s3Client.js';
import { safeBasename } from '../jobstore/types.js';
import { downloadObject, uploadObject } from '../jobstore/aws/s3Transfer.js';
import type { JobStore } from '../jobstore/types.js';

export interface S3Url {
  bucket: string;
  key: string;
}

/** Parses `s3://bucket/key` (the key taken literally, as the AWS CLI does). */
export function parseS3Url(url: string): S3Url {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(url);
  if (!m) throw new UsageError(`invalid S3 URL '${url}': expected s3://<bucket>/<key>`);
  return { bucket: m[1]!, key: m[2]! };
}

let cached: { settings: S3Settings; client: ReturnType<typeof makeS3Client>; endpoint: string | undefined } | undefined;

/** One client per configured endpoint (variables or the profile's endpoint_url). */
function bucketFor(u: S3Url): { bucket: S3Bucket; settings: S3Settings } {
  const settings = s3SettingsFromEnv(process.env['AWS_REGION'] || process.env['AWS_DEFAULT_REGION'] || 'us-east-1');
  if (!cached || cached.endpoint !== settings.endpoint) {
    cached = { settings, client: makeS3Client(settings, { followRegionRedirects: true }), endpoint: settings.endpoint };
  }
  return {
    bucket: new S3Bucket(cached.client, u.bucket, { retry: cached.settings.retry, what: `bucket ${u.bucket}` }),
    settings: cached.settings,
  };
}

function noBucket(e: unknown, url: string, u: S3Url): never {
  if (e instanceof JobStoreError && e.code === 'JOBSTORE_MISSING') throw new NotFoundError(`${url}: there is no bucket ${u.bucket}`);
  throw e;
}

/** The object an `s3://` URL names, as a checked stream, and its size. */
export async function openS3Url(url: string): Promise<{ stream: Readable; size: number }> {
  const u = parseS3Url(url);
  const { bucket } = bucketFor(u);
  return downloadObject(bucket, u.key, url).catch((e: unknown) => noBucket(e, url, u));
}

/** Copies the object an `s3://` URL names into the job store; returns its file id. */
export async function importS3Url(url: string, store: JobStore): Promise<FileID> {
  const { stream } = await openS3Url(url);
  return store.writeFile(stream, { basename: safeBasename(parseS3Url(url).key.split('/').pop() ?? 'data') });
}

/** Copies a job store file to the object an `s3://` URL names (replacing it if it exists). */
export async function exportS3Url(store: JobStore, fileId: FileID, url: string): Promise<void> {
  const u = parseS3Url(url);
  const { bucket, settings } = bucketFor(u);
  const stream = await store.readFileStream(fileId);
  await uploadObject(bucket, u.key, stream, { partSize: settings.partSize, queueSize: settings.queueSize, checkEtag: true }).catch(
    (e: unknown) => noBucket(e, url, u),
  );
}
