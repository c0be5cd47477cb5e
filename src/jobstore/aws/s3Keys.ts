/**
 * Where the AWS job store keeps things in its bucket (the layout is described at the top of
 * `awsJobStore.ts`), and the small naming helpers that go with it.
 */
import { randomBytes } from 'node:crypto';
import { NotFoundError } from '../../errors.js';
import type { FileID } from '../../job/types.js';
import { safeBasename } from '../types.js';

export const MARKER_KEY = 'toil-jobstore.json';
export const JOBS = 'jobs/';
export const SHARED = 'shared/';
export const FILES = 'files/';
export const LOGS = 'logs/';
export const MESSAGES = 'messages/';
export const MESSAGE_CLAIMS = 'message-claims/';
export const PROBES = 'probes/';
export const OWNERS = 'owners/';
/** Records of SimpleDB-metadata stores too large for an item (see sdbRecords.ts). */
export const SDB_RECORDS = 'sdb-records/';

/** The bucket of a job store: `<name>--toil`. */
export function bucketName(storeName: string): string {
  return `${storeName}--toil`;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random string of letters and digits (about 5.95 bits each). */
export function nonce(n = 16): string {
  const bytes = randomBytes(n * 2);
  let out = '';
  for (const b of bytes) {
    if (b < 248) out += ALNUM[b % 62];
    if (out.length === n) return out;
  }
  return out + nonce(n - out.length);
}

/**
 * File ids are `<random>.<crc32>/<basename>`, stored at `files/<random>/<basename>`: the key is
 * fixed before the upload, the CRC-32 of the content (8 hex digits) is added to the id once the
 * upload is done, and downloads check it.
 */
export interface ParsedFileId {
  key: string;
  crc32: number | undefined;
}

export function parseFileId(id: FileID): ParsedFileId {
  const m = /^([A-Za-z0-9]{6,40})(?:\.([0-9a-f]{8}))?\/([^/\\\0]{1,255})$/.exec(id);
  if (!m || m[3] === '.' || m[3] === '..') throw new NotFoundError(`'${id}' is not a file id of this job store`, { fileId: id });
  return { key: `${FILES}${m[1]}/${m[3]}`, crc32: m[2] === undefined ? undefined : parseInt(m[2], 16) };
}

export function fileKey(id: FileID): string {
  return parseFileId(id).key;
}

/** A new file's random part and basename; the id is completed by {@link fileIdWithCrc}. */
export function newFileName(basename: string): { random: string; base: string; key: string } {
  const random = nonce(20);
  const base = safeBasename(basename);
  return { random, base, key: `${FILES}${random}/${base}` };
}

export function fileIdWithCrc(random: string, base: string, crc32: number): FileID {
  return `${random}.${(crc32 >>> 0).toString(16).padStart(8, '0')}/${base}`;
}

export function logKey(jobId: string): string {
  return `${LOGS}${jobId}.log`;
}

/** Message keys sort in sending order: milliseconds, then a per-process counter. */
let messageCounter = 0;
export function messageKey(): string {
  const ms = Date.now().toString().padStart(15, '0');
  const seq = (messageCounter++ % 1e9).toString().padStart(9, '0');
  return `${MESSAGES}${ms}-${seq}-${nonce(10)}.json`;
}
