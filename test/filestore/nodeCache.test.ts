/**
 * The node cache across real processes sharing one cache directory: once-per-node producers,
 * downloads killed half-way, eviction order, reservations that never fit, a cache that cannot be opened (children.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lines, MiB, useCacheChildren } from './children.js';

const { t, child, randomFile } = useCacheChildren();

describe('once per node', () => {
  it('runs the producer once for 8 concurrent callers and gives each the directory', async () => {
    const counter = path.join(t.dir, 'counter');
    const kids = Array.from({ length: 8 }, () => child('once', { key: 'image:docker://ubuntu', counter, delayMs: 400 }));
    const results = await Promise.all(kids.map((k) => k.done));
    expect(await lines(counter)).toHaveLength(1);
    const dirs = new Set(results.map((r) => (r.json as { dir: string }).dir));
    expect(dirs.size).toBe(1);
    for (const r of results) expect((r.json as { done: string }).done).toMatch(/^made by \d+$/);
    // node:sqlite's ExperimentalWarning is filtered (and only that one).
    for (const r of results) expect(r.stderr).toBe('');
  });

  it('lets the next waiter run a producer whose process died, in an emptied directory', async () => {
    const counter = path.join(t.dir, 'counter');
    const crasher = child('once', { key: 'k', counter, delayMs: 300, crash: true });
    await crasher.line('# producing');
    const waiters = Array.from({ length: 3 }, () => child('once', { key: 'k', counter, delayMs: 100 }));
    expect((await crasher.done).signal).toBe('SIGKILL');
    const results = await Promise.all(waiters.map((k) => k.done));
    expect(await lines(counter)).toHaveLength(2);
    const pids = await lines(counter);
    for (const r of results) expect(r.json).toMatchObject({ done: `made by ${pids[1]}` });
    const dir = (results[0]!.json as { dir: string }).dir;
    expect(readdirSync(dir).sort()).toEqual(['done', 'partial']);
  });

  it('frees the claim of a producer that throws: the caller gets the error, the next caller runs it', async () => {
    const counter = path.join(t.dir, 'counter');
    const thrower = await child('once', { key: 'k', counter, delayMs: 10, throw: true }).done;
    expect(thrower.json).toEqual({ error: 'producer failed' });
    const next = await child('once', { key: 'k', counter, delayMs: 10 }).done;
    expect(next.json).toMatchObject({ done: expect.stringMatching(/^made by/) });
    expect(await lines(counter)).toHaveLength(2);
  });
});

describe('once per node, shared by every workflow', () => {
  it('keeps apart the keys of two job stores, and shares a key asked for with no job store', async () => {
    const counter = path.join(t.dir, 'counter');
    const run = async (scope?: string) =>
      ((await child('once', { key: 'k', counter, delayMs: 10, scope }).done).json as { dir: string }).dir;
    const dirs = [await run('file:/a'), await run('file:/b'), await run(), await run(), await run('file:/a')];
    expect(await lines(counter)).toHaveLength(3);
    expect(new Set(dirs).size).toBe(3);
    expect(dirs[2]).toBe(dirs[3]);
    expect(dirs[4]).toBe(dirs[0]);
  });

  it('makes a shared directory again when it was changed after it was made, and tells the caller', async () => {
    const counter = path.join(t.dir, 'counter');
    const made = await child('once', { key: 'image', counter, delayMs: 10 }).done;
    const again = await child('once', { key: 'image', counter, delayMs: 10 }).done;
    expect(again.json).toEqual(made.json);
    expect(await lines(counter)).toHaveLength(1);
    // Somebody sharing the host path writes into it (same size, other bytes).
    const fh = await open(path.join((made.json as { dir: string }).dir, 'done'), 'r+');
    await fh.write(Buffer.from('MADE'), 0, 4, 0);
    await fh.close();
    const next = await child('once', { key: 'image', counter, delayMs: 10 }).done;
    expect(await lines(counter)).toHaveLength(2);
    expect(next.json).toMatchObject({
      done: expect.stringMatching(/^made by/),
      notes: ["the shared once-per-node directory of 'image' was changed after it was made (done changed): made again"],
    });
  });
});

describe('downloads', () => {
  it('a download killed half-way is completed by the next reader; no reader gets a partial file', async () => {
    const { file, sha } = await randomFile('big', 4 * MiB);
    const fetchLog = path.join(t.dir, 'fetches');
    const reads = [{ key: 'big', source: file }];
    const victim = child('read', { reads, fetchLog, delayMs: 40 });
    await victim.line('# fetching');
    // Readers that start while the download is under way wait for it.
    const early = Array.from({ length: 3 }, () => child('read', { reads, fetchLog, delayMs: 2 }));
    await new Promise((r) => setTimeout(r, 300));
    victim.proc.kill('SIGKILL');
    const late = Array.from({ length: 2 }, () => child('read', { reads, fetchLog }));
    const results = await Promise.all([...early, ...late].map((k) => k.done));
    expect((await victim.done).signal).toBe('SIGKILL');
    for (const r of results) {
      expect(r.code).toBe(0);
      expect((r.json as { results: Array<{ sha: string; cached: boolean }> }).results[0]).toMatchObject({ sha, cached: true });
    }
    // The killed download, then exactly one more: every other reader linked that one.
    expect(await lines(fetchLog)).toHaveLength(2);
    expect(results.filter((r) => (r.json as { results: Array<{ hit: boolean }> }).results[0]!.hit === false)).toHaveLength(1);
    expect(readdirSync(path.join(t.dir, 'cache', 'tmp'))).toEqual([]);
  });

  it('a holder whose event loop is blocked is not taken for dead: its download is waited for', async () => {
    const { file, sha } = await randomFile('big', MiB);
    const fetchLog = path.join(t.dir, 'fetches');
    const reads = [{ key: 'big', source: file }];
    const busy = child('read', { reads, fetchLog, blockMs: 2500 });
    await busy.line('# fetching');
    const waiter = await child('read', { reads, fetchLog }).done;
    expect((await busy.done).code).toBe(0);
    expect((waiter.json as { results: Array<{ sha: string; hit: boolean }> }).results[0]).toMatchObject({ sha, hit: true });
    expect(await lines(fetchLog)).toHaveLength(1);
  });
});

describe('eviction', () => {
  it('evicts the least recently used unheld file first and never a file in use', async () => {
    const files = await Promise.all(['a', 'b', 'c', 'd'].map((n) => randomFile(n, MiB)));
    const fetchLog = path.join(t.dir, 'fetches');
    const src = (i: number) => ({ key: 'abcd'[i]!, source: files[i]!.file });
    const cap = 3.5 * MiB;
    // A holds a (the oldest entry) while the others come and go.
    const holder = child('read', { reads: [src(0)], fetchLog, cap, holdMs: 60_000, job: 'holder' });
    await holder.line('# read');
    await child('read', { reads: [src(1), src(2)], fetchLog, cap }).done;
    const last = await child('read', { reads: [src(3)], fetchLog, cap }).done;
    const keys = (last.json as { entries: Array<{ key: string }> }).entries.map((e) => e.key);
    expect(keys.sort()).toEqual(['a', 'c', 'd']);
    // Once nothing holds a, it goes before c and d.
    holder.proc.kill('SIGKILL');
    await holder.done;
    const again = await child('read', { reads: [src(1)], fetchLog, cap }).done;
    expect((again.json as { entries: Array<{ key: string }> }).entries.map((e) => e.key).sort()).toEqual(['b', 'c', 'd']);
    // The killed holder was reaped (its lock file removed); the others closed.
    expect(readdirSync(path.join(t.dir, 'cache', 'holders'))).toEqual([]);
  });

  it('reads a file uncached when held files fill the cap', async () => {
    const files = await Promise.all(['a', 'b'].map((n) => randomFile(n, 2 * MiB)));
    const fetchLog = path.join(t.dir, 'fetches');
    const r = await child('read', {
      reads: [
        { key: 'a', source: files[0]!.file },
        { key: 'b', source: files[1]!.file },
      ],
      fetchLog,
      cap: 3 * MiB,
    }).done;
    expect((r.json as { results: unknown[] }).results).toEqual([
      expect.objectContaining({ key: 'a', cached: true }),
      { key: 'b', hit: false, cached: false },
    ]);
  });
});

describe('reservations', () => {
  it('fails a job whose disk requirement can never fit, naming the sizes', async () => {
    const r = await child('reserve', { bytes: 2 ** 60 }).done;
    expect(r.json).toMatchObject({
      name: 'ResourceError',
      error: expect.stringMatching(/disk requirement of 1024 PiB does not fit: capacity .* on the node's cache file system/),
    });
  });
});

describe('a cache that cannot be opened', () => {
  it('leaves no lock file and no open file behind: a corrupt cache.db opened 50 times', async () => {
    const dir = path.join(t.dir, 'cache');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'cache.db'), randomBytes(64 * 1024));
    const r = await child('open-many', { n: 50 }).done;
    const got = r.json as { errors: string[]; fdsBefore: number; fdsAfter: number; locks: string[] };
    expect(got.errors).toEqual([expect.stringMatching(/not a database/)]);
    expect(got.locks).toEqual([]);
    expect(got.fdsAfter).toBe(got.fdsBefore);
  });
});
