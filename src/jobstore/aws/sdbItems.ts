/**
 * How a record (bytes) is laid out as one SimpleDB item, as pure functions (the protocol that
 * uses them is described in `sdbRecords.ts`).
 *
 * Rules, from SimpleDB's limits (values of at most 1,024 bytes, at most 256 attribute pairs per
 * item, text carried in XML):
 * - `v`: the version, a fresh nonce per write (`s.<nonce>` when the record lives in S3), single
 *   valued, so that `Expected` can test it.
 * - `e`: the encoding: `u` (the record is UTF-8 text that XML carries unchanged: no control
 *   characters but tab and newline, so not even CR, which XML parsers turn into LF), `b` (base64,
 *   for anything else) or `s` (the record is in S3, under the key in `p`).
 * - `n`: how many chunk attributes hold the record; `c000` … `c249`: the chunks, each at most
 *   1,024 bytes; UTF-8 text is cut only between characters, base64 every 1,024 characters.
 * - Chunks beyond `n`, and a `p` while `e` is not `s`, are leftovers of older versions (a write
 *   replaces only the attributes it names): readers ignore them, and they never push an item
 *   past 256 pairs, since `v`, `e`, `n`, `p` and 250 chunks are 254.
 * - A record that needs more than {@link MAX_CHUNKS} chunks goes to S3.
 */
import { JobStoreError } from '../../errors.js';
import type { SdbAttribute, SdbPutAttribute } from './simpledb/client.js';

export const MAX_VALUE_BYTES = 1024;
export const MAX_CHUNKS = 250;
/** The version prefix of records kept in S3. */
export const IN_S3 = 's.';

export type Encoded = { kind: 'inline'; attributes: SdbPutAttribute[] } | { kind: 'tooBig' };

export type Decoded = { version: string; data: Buffer } | { version: string; s3Key: string };

// eslint-disable-next-line no-control-regex -- control characters are exactly what XML cannot carry unchanged
const NOT_XML_SAFE = /[\0-\x08\x0b-\x1f\x7f\ufffe\uffff]/;

/** Whether `data` is UTF-8 text that survives the trip through SimpleDB's XML unchanged. */
export function isXmlSafeText(data: Buffer): boolean {
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) && !NOT_XML_SAFE.test(text);
}

/** Cuts UTF-8 bytes into pieces of at most `max` bytes, never inside a character. */
export function splitUtf8(data: Buffer, max = MAX_VALUE_BYTES): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < data.length) {
    let end = Math.min(start + max, data.length);
    // Continuation bytes are 10xxxxxx: back up to the first byte of the character.
    while (end < data.length && end > start && (data[end]! & 0xc0) === 0x80) end--;
    out.push(data.subarray(start, end).toString('utf8'));
    start = end;
  }
  return out;
}

function splitBase64(data: Buffer): string[] {
  const raw = (MAX_VALUE_BYTES / 4) * 3;
  const out: string[] = [];
  for (let i = 0; i < data.length; i += raw) out.push(data.subarray(i, i + raw).toString('base64'));
  return out;
}

export function chunkName(i: number): string {
  return `c${i.toString().padStart(3, '0')}`;
}

function put(name: string, value: string): SdbPutAttribute {
  return { name, value, replace: true };
}

/** The attributes of an inline record, or tooBig when it needs S3. */
export function encodeInline(data: Buffer, version: string, maxChunks = MAX_CHUNKS): Encoded {
  const text = isXmlSafeText(data);
  const chunks = text ? splitUtf8(data) : splitBase64(data);
  if (chunks.length > maxChunks) return { kind: 'tooBig' };
  return {
    kind: 'inline',
    attributes: [
      put('v', version),
      put('e', text ? 'u' : 'b'),
      put('n', String(chunks.length)),
      ...chunks.map((c, i) => put(chunkName(i), c)),
    ],
  };
}

/** The attributes of a record kept in S3 under `key`. */
export function encodePointer(version: string, key: string): SdbPutAttribute[] {
  return [put('v', version), put('e', 's'), put('n', '0'), put('p', key)];
}

/** Reads an item back; undefined for no item. A malformed item is a JobStoreError naming `what`. */
export function decodeItem(attributes: readonly SdbAttribute[], what: string): Decoded | undefined {
  if (attributes.length === 0) return undefined;
  const values = new Map<string, string>();
  for (const a of attributes) {
    if (values.has(a.name)) throw new JobStoreError('JOBSTORE', `${what}: SimpleDB item has several values of '${a.name}'`);
    values.set(a.name, a.value);
  }
  const bad = (why: string) => new JobStoreError('JOBSTORE', `${what}: not a toil-ts record in SimpleDB (${why})`);
  const version = values.get('v');
  const enc = values.get('e');
  if (!version) throw bad('no version');
  if (enc === 's') {
    const key = values.get('p');
    if (!key) throw bad('no S3 key');
    return { version, s3Key: key };
  }
  if (enc !== 'u' && enc !== 'b') throw bad(`encoding '${enc ?? ''}'`);
  const n = Number(values.get('n'));
  if (!Number.isInteger(n) || n < 0 || n > MAX_CHUNKS) throw bad('chunk count');
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const c = values.get(chunkName(i));
    if (c === undefined) throw bad(`chunk ${i} missing`);
    parts.push(Buffer.from(c, enc === 'u' ? 'utf8' : 'base64'));
  }
  return { version, data: Buffer.concat(parts) };
}

/** A SimpleDB select string literal. */
export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A SimpleDB select domain (or attribute) name in backticks. */
export function quoteName(s: string): string {
  return `\`${s.replace(/`/g, '``')}\``;
}
