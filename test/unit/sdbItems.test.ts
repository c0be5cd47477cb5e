/** The SimpleDB item layout of a record (src/jobstore/aws/sdbItems.ts): the pure parts. */
import { describe, expect, it } from '@jest/globals';
import {
  decodeItem,
  encodeInline,
  encodePointer,
  isXmlSafeText,
  MAX_CHUNKS,
  quoteLiteral,
  quoteName,
  splitUtf8,
} from '../../src/jobstore/aws/sdbItems.js';

function roundTrip(data: Buffer): Buffer {
  const e = encodeInline(data, 'ver1');
  if (e.kind !== 'inline') throw new Error('too big');
  for (const a of e.attributes) expect(Buffer.byteLength(a.value)).toBeLessThanOrEqual(1024);
  const d = decodeItem(
    e.attributes.map((a) => ({ name: a.name, value: a.value })),
    'test',
  );
  if (!d || !('data' in d)) throw new Error('not inline');
  expect(d.version).toBe('ver1');
  return d.data;
}

describe('SimpleDB items', () => {
  it('splits UTF-8 only between characters, each piece at most 1,024 bytes', () => {
    // 3-byte characters do not divide 1,024: a naive cut would split one.
    const text = '€'.repeat(1000) + 'a' + '😀'.repeat(300);
    const pieces = splitUtf8(Buffer.from(text));
    for (const p of pieces) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(1024);
    expect(pieces.join('')).toBe(text);
    expect(pieces.some((p) => p.includes('\ufffd'))).toBe(false);
  });

  it('keeps JSON text as text and anything else as base64, and both round-trip', () => {
    const json = Buffer.from(JSON.stringify({ id: 'j', payload: ['ü€😀', 'x'.repeat(5000)], nl: 'a\nb\tc' }));
    const e = encodeInline(json, 'v');
    expect(e.kind === 'inline' && e.attributes.find((a) => a.name === 'e')?.value).toBe('u');
    expect(roundTrip(json).equals(json)).toBe(true);
    for (const odd of [Buffer.from('a\r\nb'), Buffer.from([0xff, 0xfe, 0, 1, 2]), Buffer.from('x\u0000y'), Buffer.alloc(5000, 7)]) {
      expect(isXmlSafeText(odd)).toBe(false);
      expect(roundTrip(odd).equals(odd)).toBe(true);
    }
    expect(roundTrip(Buffer.alloc(0)).length).toBe(0);
  });

  it('sends a record that needs more than 250 chunks to S3, and an item never exceeds 256 pairs', () => {
    const fits = Buffer.from('y'.repeat(MAX_CHUNKS * 1024));
    const e = encodeInline(fits, 'v');
    expect(e.kind).toBe('inline');
    if (e.kind === 'inline') expect(e.attributes.length + 1).toBeLessThanOrEqual(256); // + a leftover pointer
    expect(encodeInline(Buffer.from('y'.repeat(MAX_CHUNKS * 1024 + 1)), 'v').kind).toBe('tooBig');
    expect(encodeInline(Buffer.alloc(10 * 1024, 1), 'v', 8).kind).toBe('tooBig');
    const p = decodeItem(encodePointer('s.abc', 'sdb-records/jobs/j/abc'), 'test');
    expect(p).toEqual({ version: 's.abc', s3Key: 'sdb-records/jobs/j/abc' });
  });

  it('ignores leftover chunks of a longer older version, and refuses malformed items', () => {
    const e = encodeInline(Buffer.from('short'), 'v2');
    if (e.kind !== 'inline') throw new Error('too big');
    const attrs = [...e.attributes, { name: 'c005', value: 'old' }, { name: 'p', value: 'old-key' }];
    expect(decodeItem(attrs, 'x')).toEqual({ version: 'v2', data: Buffer.from('short') });
    expect(decodeItem([], 'x')).toBeUndefined();
    expect(() => decodeItem([{ name: 'e', value: 'u' }], 'job j')).toThrow(/job j: not a toil-ts record in SimpleDB \(no version\)/);
    expect(() =>
      decodeItem(
        [
          { name: 'v', value: '1' },
          { name: 'v', value: '2' },
        ],
        'x',
      ),
    ).toThrow(/several values/);
    expect(() =>
      decodeItem(
        [
          { name: 'v', value: '1' },
          { name: 'e', value: 'u' },
          { name: 'n', value: '2' },
          { name: 'c000', value: 'a' },
        ],
        'x',
      ),
    ).toThrow(/chunk 1 missing/);
  });

  it('quotes select names and literals', () => {
    expect(quoteName('a--jobs')).toBe('`a--jobs`');
    expect(quoteName('we`ird')).toBe('`we``ird`');
    expect(quoteLiteral("it's%")).toBe("'it''s%'");
  });
});
