/** Stored JSON is read one way: parsed, validated, and a corrupt record is a clear JobStoreError. */
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { JobStoreError, UsageError } from '../../src/errors.js';
import { parseMessage, parseRecord, parseStored } from '../../src/jobstore/records.js';
import { checkJobId, safeBasename } from '../../src/jobstore/types.js';
import { parseSize } from '../../src/size.js';

describe('stored JSON', () => {
  const Schema = z.object({ n: z.number() });

  it('is returned validated', () => {
    expect(parseStored(Schema, Buffer.from('{"n": 3}'), 'thing')).toEqual({ n: 3 });
  });

  it('that is torn is a JobStoreError naming what and why', () => {
    const e = (() => {
      try {
        parseStored(Schema, '{"n": 3', 'jobs/abc/v2.json');
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(JobStoreError);
    expect((e as Error).message).toMatch(/^jobs\/abc\/v2\.json is corrupt: not JSON/);
  });

  it('of the wrong shape names the field', () => {
    expect(() => parseStored(Schema, '{"n": "3"}', 'thing')).toThrow(/^thing is invalid: n: /);
    expect(() => parseRecord('[]', 'job x')).toThrow(JobStoreError);
    expect(() => parseRecord('[]', 'job x')).toThrow(/^job x: stored record is invalid/);
  });
});

describe('channel messages', () => {
  it('carry node cache counters in stats, and older stats without them still parse', () => {
    const cache = { hits: 9, misses: 1, hitBytes: 9 * 2 ** 20, missBytes: 2 ** 20 };
    expect(parseMessage(JSON.stringify({ kind: 'stats', jobId: 'j', jobName: 'n', cache, at: 1 }))).toMatchObject({ cache });
    expect(parseMessage(JSON.stringify({ kind: 'stats', jobId: 'j', jobName: 'n', wallSeconds: 1, at: 1 })).cache).toBeUndefined();
    expect(() => parseMessage(JSON.stringify({ kind: 'stats', jobId: 'j', jobName: 'n', cache: { hits: 'many' }, at: 1 }))).toThrow(
      /cache\.hits/,
    );
  });
});

describe('bad names and sizes are usage errors', () => {
  it('job ids, sizes', () => {
    expect(() => checkJobId('../etc')).toThrow(UsageError);
    expect(() => parseSize('2 gigs')).toThrow(UsageError);
  });

  it('basenames are made safe in one place', () => {
    expect(safeBasename('../../etc/passwd')).toBe('passwd');
    expect(safeBasename('a\u0007b\u007f')).toBe('a_b_');
    expect(safeBasename('..')).toBe('data');
  });
});
