/** The node cache's rules as pure functions: accounting, LRU eviction, fit checks, claims. */
import { describe, expect, it } from '@jest/globals';
import {
  addStats,
  cachedBytes,
  emptyStats,
  evictionOrder,
  fitsAsIs,
  formatStats,
  judgeClaim,
  judgeCopy,
  planRoom,
  type EntryView,
} from '../../src/filestore/cacheRules.js';

const MiB = 2 ** 20;
const entry = (key: string, size: number, lastUsed: number, extra: Partial<EntryView> = {}): EntryView => ({
  key,
  size,
  lastUsed,
  refs: 0,
  state: 'ready',
  ...extra,
});

describe('accounting', () => {
  it('counts entries being filled as well as complete ones', () => {
    expect(cachedBytes([entry('a', 3, 1), entry('b', 4, 2, { state: 'filling' })])).toBe(7);
  });
});

describe('eviction order', () => {
  it('takes the least recently used unheld complete entries first, never held or filling ones', () => {
    const entries = [
      entry('old-held', MiB, 1, { refs: 2 }),
      entry('c', MiB, 5),
      entry('a', MiB, 2),
      entry('filling', MiB, 0, { state: 'filling' }),
      entry('b', MiB, 3),
    ];
    expect(evictionOrder(entries).map((e) => e.key)).toEqual(['a', 'b', 'c']);
  });
});

describe('room for a file', () => {
  it('evicts nothing when there is room', () => {
    expect(planRoom({ capacity: 10 * MiB, entries: [entry('a', MiB, 1)], reserved: 0 }, { bytes: MiB, as: 'entry' })).toEqual({
      ok: true,
      evict: [],
    });
  });

  it('evicts least recently used entries, only as many as needed, under a cap', () => {
    const entries = [entry('held', MiB, 1, { refs: 1 }), entry('b', MiB, 2), entry('c', MiB, 3), entry('d', MiB, 4)];
    const view = { capacity: 100 * MiB, cap: 4.5 * MiB, entries, reserved: 0 };
    expect(planRoom(view, { bytes: MiB, as: 'entry' })).toEqual({ ok: true, evict: ['b'] });
    expect(planRoom(view, { bytes: 2 * MiB, as: 'entry' })).toEqual({ ok: true, evict: ['b', 'c'] });
  });

  it('counts running jobs reservations against the capacity', () => {
    const view = { capacity: 10 * MiB, entries: [entry('a', 2 * MiB, 1), entry('b', 2 * MiB, 2)], reserved: 7 * MiB };
    expect(planRoom(view, { bytes: MiB, as: 'entry' })).toEqual({ ok: true, evict: ['a'] });
  });

  it('says a file larger than the cap never fits, naming the sizes', () => {
    const r = planRoom({ capacity: 100 * MiB, cap: 2 * MiB, entries: [], reserved: 0 }, { bytes: 3 * MiB, as: 'entry' });
    expect(r).toMatchObject({ ok: false, never: true });
    expect(!r.ok && r.why).toMatch(/file of 3\.0 MiB does not fit: capacity 100 MiB, cache cap 2\.0 MiB/);
  });

  it('says a file must wait (or go uncached) when held entries fill the cap', () => {
    const view = {
      capacity: 100 * MiB,
      cap: 3 * MiB,
      entries: [entry('x', 2 * MiB, 1, { refs: 1 }), entry('y', MiB, 2, { state: 'filling' })],
      reserved: 0,
    };
    const r = planRoom(view, { bytes: MiB, as: 'entry' });
    expect(r).toMatchObject({ ok: false, never: false });
    expect(!r.ok && r.why).toMatch(/3\.0 MiB cached \(3\.0 MiB of it held/);
  });
});

describe('room for a job', () => {
  it('ignores the cap, which is about cached files only', () => {
    expect(planRoom({ capacity: 10 * MiB, cap: MiB, entries: [], reserved: 0 }, { bytes: 5 * MiB, as: 'reservation' })).toEqual({
      ok: true,
      evict: [],
    });
  });

  it('evicts cached files to make room for a job', () => {
    const view = { capacity: 10 * MiB, entries: [entry('a', 4 * MiB, 1), entry('b', 4 * MiB, 2)], reserved: 0 };
    expect(planRoom(view, { bytes: 5 * MiB, as: 'reservation' })).toEqual({ ok: true, evict: ['a'] });
  });

  it('fails a job larger than the capacity at once, and makes one that fits later wait', () => {
    const never = planRoom({ capacity: 10 * MiB, entries: [], reserved: 0 }, { bytes: 11 * MiB, as: 'reservation' });
    expect(never).toMatchObject({ ok: false, never: true });
    expect(!never.ok && never.why).toMatch(/disk requirement of 11\.0 MiB does not fit: capacity 10\.0 MiB/);
    const wait = planRoom(
      { capacity: 10 * MiB, entries: [entry('a', MiB, 1, { refs: 1 })], reserved: 8 * MiB },
      { bytes: 2 * MiB, as: 'reservation' },
    );
    expect(wait).toMatchObject({ ok: false, never: false });
  });
});

describe('fit from the sums alone', () => {
  const views = [
    { capacity: 10 * MiB, entries: [entry('a', 4 * MiB, 1), entry('b', 4 * MiB, 2)], reserved: 0 },
    { capacity: 10 * MiB, cap: 5 * MiB, entries: [entry('a', 4 * MiB, 1, { refs: 1 })], reserved: MiB },
    { capacity: 10 * MiB, entries: [entry('f', 3 * MiB, 1, { state: 'filling' as const })], reserved: 6 * MiB },
    { capacity: 10 * MiB, cap: MiB, entries: [], reserved: 0 },
  ];
  const needs = [MiB, 2 * MiB, 5 * MiB, 11 * MiB].flatMap((bytes) => [
    { bytes, as: 'entry' as const },
    { bytes, as: 'reservation' as const },
  ]);

  it('says it fits exactly when planRoom would evict nothing', () => {
    let fits = 0;
    for (const view of views)
      for (const need of needs) {
        const totals = { capacity: view.capacity, cap: view.cap, cached: cachedBytes(view.entries), reserved: view.reserved };
        const plan = planRoom(view, need);
        const asIs = plan.ok && plan.evict.length === 0;
        expect({ view, need, fits: fitsAsIs(totals, need) }).toEqual({ view, need, fits: asIs });
        if (asIs) fits++;
      }
    // both answers occur
    expect(fits).toBeGreaterThan(0);
    expect(fits).toBeLessThan(views.length * needs.length);
  });

  it('counts the cap against files, not against a job', () => {
    const totals = { capacity: 10 * MiB, cap: MiB, cached: MiB, reserved: 0 };
    expect(fitsAsIs(totals, { bytes: MiB, as: 'entry' })).toBe(false);
    expect(fitsAsIs(totals, { bytes: MiB, as: 'reservation' })).toBe(true);
  });
});

describe('claims', () => {
  it('waits for a live holder, takes over from a dead one, and knows its own', () => {
    const alive = (o: string) => o === 'live';
    expect(judgeClaim(undefined, 'me', alive)).toBe('free');
    expect(judgeClaim({ owner: 'me' }, 'me', alive)).toBe('mine');
    expect(judgeClaim({ owner: 'live' }, 'me', alive)).toBe('wait');
    expect(judgeClaim({ owner: 'gone' }, 'me', alive)).toBe('takeover');
  });
});

describe('integrity', () => {
  const recorded = { size: 10, digest: 'ab', mtime: '100' };
  it('serves a copy whose file has its size and time: a stat, no read', () => {
    expect(judgeCopy(recorded, { size: 10, mtime: '100' })).toBe('serve');
  });
  it('checks the digest of a copy whose time changed, or was never checked (adopted)', () => {
    expect(judgeCopy(recorded, { size: 10, mtime: '101' })).toBe('verify');
    expect(judgeCopy({ ...recorded, mtime: null }, { size: 10, mtime: '100' })).toBe('verify');
  });
  it('drops a copy of another size, or gone', () => {
    expect(judgeCopy(recorded, { size: 11, mtime: '100' })).toBe('drop');
    expect(judgeCopy(recorded, undefined)).toBe('drop');
  });
  it('checks only the size of an entry an older version made (no digest)', () => {
    expect(judgeCopy({ size: 10, digest: null, mtime: null }, { size: 10, mtime: '5' })).toBe('serve');
    expect(judgeCopy({ size: 10, digest: null, mtime: null }, { size: 9, mtime: '5' })).toBe('drop');
  });
});

describe('stats', () => {
  it('adds and formats', () => {
    const s = addStats(emptyStats(), { hits: 9, misses: 1, hitBytes: 9 * MiB, missBytes: MiB });
    expect(formatStats(s)).toBe('9 hits, 1 miss; 9.0 MiB not downloaded, 1.0 MiB downloaded');
  });
});
