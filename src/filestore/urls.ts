/**
 * Importing into and exporting from the job store by URL: `file:` URLs and local paths,
 * `http(s)://` (import only), and `s3://bucket/key`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { NotFoundError, UsageError } from '../errors.js';
import type { FileID } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';

/** Loaded only when an s3:// URL is used. */
const S3_URLS = './s3Urls.js';

function localPath(url: string): string | undefined {
  if (url.startsWith('file:')) return fileURLToPath(url.startsWith('file://') ? url : `file://${path.resolve(url.slice(5))}`);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return path.resolve(url);
  return undefined;
}

/** Copies what `url` names into the job store. */
export async function importUrl(store: JobStore, url: string): Promise<FileID> {
  const local = localPath(url);
  if (local !== undefined) {
    try {
      return await store.writeFile(local);
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`cannot import ${url}: no such file`);
      throw e;
    }
  }
  if (/^https?:\/\//i.test(url)) {
    const res = await fetch(url);
    if (!res.ok || !res.body) throw new NotFoundError(`cannot import ${url}: HTTP ${res.status}`);
    const name = decodeURIComponent(new URL(url).pathname.split('/').pop() || 'download');
    return store.writeFile(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>), { basename: name });
  }
  if (url.startsWith('s3://')) {
    const s3 = (await import(S3_URLS)) as { importS3Url(url: string, store: JobStore): Promise<FileID> };
    return s3.importS3Url(url, store);
  }
  throw new UsageError(`cannot import ${url}: unsupported URL scheme (use file:, http(s):// or s3://)`);
}

/** Copies a job store file out to `url`. */
export async function exportUrl(store: JobStore, id: FileID, url: string): Promise<void> {
  const local = localPath(url);
  if (local !== undefined) {
    await mkdir(path.dirname(local), { recursive: true });
    await store.readFile(id, local);
    return;
  }
  if (url.startsWith('s3://')) {
    const s3 = (await import(S3_URLS)) as { exportS3Url(store: JobStore, id: FileID, url: string): Promise<void> };
    return s3.exportS3Url(store, id, url);
  }
  throw new UsageError(`cannot export to ${url}: unsupported URL scheme (use file: or s3://)`);
}
