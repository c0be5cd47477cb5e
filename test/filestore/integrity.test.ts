/**
 * A cached file is served only as it was cached: its sha256 is recorded when it is published
 * and checked where that is cheap — when its file's time shows it was written to (a job that
 * wrote into the read-only link it was given), and when a complete download is adopted from a
 * downloader that died before publishing it. A copy that does not match is not served: it is
 * downloaded again, and the reader is told so (the worker puts it in the leader's log).
 */
import { describe, expect, it } from '@jest/globals';
import { chmod, copyFile, mkdir, open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { lines, MiB, useCacheChildren } from './children.js';

const { t, child, randomFile } = useCacheChildren();

interface Read {
  key: string;
  hit: boolean;
  cached: boolean;
  sha: string;
  notes?: string[];
}

const first = (r: { json: unknown }) => (r.json as { results: Read[] }).results[0]!;
const DAMAGED = /^the node's cached copy of a was damaged \(its bytes do not match its sha256 digest\): not used, downloaded again$/;

/** Writes over the start of the one cached file, in place (same size). */
async function damageCachedFile(): Promise<void> {
  const dir = path.join(t.dir, 'cache', 'files');
  const [name] = await readdir(dir);
  await chmod(path.join(dir, name!), 0o644);
  const fh = await open(path.join(dir, name!), 'r+');
  await fh.write(Buffer.from('damaged!'), 0, 8, 0);
  await fh.close();
}

describe('a cached copy changed in place', () => {
  it('is not served to the next reader: its digest does not match, it is downloaded again, and the reader is told', async () => {
    const { file, sha } = await randomFile('a', MiB);
    const fetchLog = path.join(t.dir, 'fetches');
    const reads = [{ key: 'a', source: file }];
    const careless = await child('read', { reads, fetchLog, damage: true }).done;
    expect(first(careless)).toMatchObject({ hit: false, sha });
    const next = await child('read', { reads, fetchLog }).done;
    expect(first(next)).toMatchObject({ hit: false, cached: true, sha, notes: [expect.stringMatching(DAMAGED)] });
    expect(await lines(fetchLog)).toHaveLength(2);
    // The copy downloaded again is checked by a stat from then on: a hit, no note.
    const third = await child('read', { reads, fetchLog }).done;
    expect(first(third)).toEqual({ key: 'a', hit: true, cached: true, how: 'link', sha });
  });
});

describe('a cache made by an older version', () => {
  it('gains the new columns when opened, and its entries (no digest) are served as before, checked by their size', async () => {
    const { file, sha } = await randomFile('a', MiB);
    const cache = path.join(t.dir, 'cache');
    await mkdir(path.join(cache, 'files'), { recursive: true });
    await copyFile(file, path.join(cache, 'files', 'a.0001'));
    await chmod(path.join(cache, 'files', 'a.0001'), 0o444);
    const statements = [
      ['CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)'],
      [
        'CREATE TABLE entries(key TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT, file TEXT NOT NULL, last_used INTEGER NOT NULL)',
      ],
      ["INSERT INTO entries VALUES ('a', ?, 'ready', NULL, 'a.0001', 1)", MiB],
    ];
    expect((await child('sql', { statements }).done).code).toBe(0);
    const fetchLog = path.join(t.dir, 'fetches');
    const next = await child('read', { reads: [{ key: 'a', source: file }], fetchLog }).done;
    expect(next.stderr).toBe('');
    expect(first(next)).toEqual({ key: 'a', hit: true, cached: true, how: 'link', sha });
    expect(await lines(fetchLog)).toEqual([]);
  });
});

describe('a download whose downloader died before publishing it', () => {
  /**
   * A file cached, then the state a downloader killed between renaming its complete file into
   * place and publishing it leaves: what the next reader reads, and the log of downloads.
   */
  async function cachedByTheKilled(): Promise<{ sha: string; fetchLog: string; reads: Array<{ key: string; source: string }> }> {
    const { file, sha } = await randomFile('a', MiB);
    const fetchLog = path.join(t.dir, 'fetches');
    const reads = [{ key: 'a', source: file }];
    await child('read', { reads, fetchLog }).done;
    const dead = 'a0a0a0a0a0a0a0a0a0a0a0a0';
    const statements = [
      ["UPDATE entries SET state = 'filling', owner = ? WHERE key = 'a'", dead],
      ['DELETE FROM refs'],
      ["INSERT INTO holders(id, started, label) VALUES (?, 0, 'killed')", dead],
    ];
    expect((await child('sql', { statements }).done).code).toBe(0);
    return { sha, fetchLog, reads };
  }

  it('is adopted by the next reader once its digest matches: no second download', async () => {
    const { sha, fetchLog, reads } = await cachedByTheKilled();
    const next = await child('read', { reads, fetchLog }).done;
    expect(first(next)).toEqual({ key: 'a', hit: true, cached: true, how: 'link', sha });
    expect(await lines(fetchLog)).toHaveLength(1);
  });

  it('is downloaded again when its digest does not match, and the reader is told', async () => {
    const { sha, fetchLog, reads } = await cachedByTheKilled();
    await damageCachedFile();
    const next = await child('read', { reads, fetchLog }).done;
    expect(first(next)).toMatchObject({ hit: false, cached: true, sha, notes: [expect.stringMatching(DAMAGED)] });
    expect(await lines(fetchLog)).toHaveLength(2);
  });
});
