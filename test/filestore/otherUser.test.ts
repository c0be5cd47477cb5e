/**
 * One node cache used by two users: cache files and lock files made by root (as older worker
 * images ran), read by a worker running as uid 1000 (as worker pods now run). With
 * fs.protected_hardlinks=1 (the Linux default) the kernel refuses to link a file one does not
 * own and cannot write: the reader gets a copy instead. A lock file it cannot open proves
 * nothing about its holder, who is waited for, not reaped.
 *
 * The cache directory is made shared as an administrator would share a host path between
 * users (its directories writable by all, cache.db and its journal read-write for all); the
 * files the cache makes keep their modes.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lines, MiB, useCacheChildren } from './children.js';

const { t, child, randomFile } = useCacheChildren();
const OTHER = 1000;

function protectedHardlinks(): boolean {
  try {
    return readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

// Needs root (to make files another user cannot link) and the kernel's protection on.
const canRun = process.getuid?.() === 0 && protectedHardlinks();
const maybe = canRun ? it : it.skip;

/** What an administrator does to share the cache directory between users. */
async function share(cache: string): Promise<void> {
  await chmod(t.dir, 0o755);
  for (const d of ['', 'files', 'tmp', 'holders', 'once']) await chmod(path.join(cache, d), 0o777);
  for (const f of await readdir(cache)) if (f.startsWith('cache.db')) await chmod(path.join(cache, f), 0o666);
}

interface ReadResult {
  results: Array<{ key: string; hit: boolean; cached: boolean; how: string; sha: string }>;
}

describe('a cache shared with another user', () => {
  maybe(`a root-owned cached file is copied, not linked, for uid ${OTHER} (link() gives EPERM)`, async () => {
    const { file, sha } = await randomFile('a', MiB);
    const cache = path.join(t.dir, 'cache');
    const fetchLog = path.join(t.dir, 'fetches');
    const reads = [{ key: 'a', source: file }];
    expect((await child('read', { reads, fetchLog }).done).code).toBe(0);
    await share(cache);
    const other = await child('read', { reads, fetchLog }, { asUser: OTHER }).done;
    expect(other.stderr).toBe('');
    expect(other.code).toBe(0);
    expect((other.json as ReadResult).results[0]).toMatchObject({ key: 'a', hit: true, cached: true, how: 'copy', sha });
    expect(await lines(fetchLog)).toHaveLength(1);
  });

  maybe(`a live root holder whose lock file uid ${OTHER} cannot open is waited for, not taken for dead`, async () => {
    const { file, sha } = await randomFile('big', 2 * MiB);
    const cache = path.join(t.dir, 'cache');
    const fetchLog = path.join(t.dir, 'fetches');
    await writeFile(fetchLog, '');
    await chmod(fetchLog, 0o666);
    await chmod(file, 0o644);
    const reads = [{ key: 'big', source: file }];
    // A root downloader, slow, whose lock file only root may open (a stricter umask).
    const root = child('read', { reads, fetchLog, delayMs: 40 });
    await root.line('# fetching');
    await share(cache);
    const [lock] = (await readdir(path.join(cache, 'holders'))).map((f) => path.join(cache, 'holders', f));
    await chmod(lock!, 0o600);
    const other = child('read', { reads, fetchLog }, { asUser: OTHER });
    const [rootEnd, otherEnd] = await Promise.all([root.done, other.done]);
    expect(rootEnd.code).toBe(0);
    expect(otherEnd.code).toBe(0);
    // One download (root's), which uid 1000 waited for and then read.
    expect(await lines(fetchLog)).toHaveLength(1);
    expect((rootEnd.json as ReadResult).results[0]).toMatchObject({ hit: false, cached: true, sha });
    expect((otherEnd.json as ReadResult).results[0]).toMatchObject({ hit: true, cached: true, sha });
    expect(existsSync(lock!)).toBe(false);
  });

  maybe(
    `a dead root holder whose lock file uid ${OTHER} cannot open is waited for a bounded time, then the file is read uncached`,
    async () => {
      const { file } = await randomFile('big', 2 * MiB);
      const cache = path.join(t.dir, 'cache');
      const fetchLog = path.join(t.dir, 'fetches');
      await writeFile(fetchLog, '');
      await chmod(fetchLog, 0o666);
      const reads = [{ key: 'big', source: file }];
      const root = child('read', { reads, fetchLog, delayMs: 40 });
      await root.line('# fetching');
      root.proc.kill('SIGKILL');
      await root.done;
      await share(cache);
      for (const f of await readdir(path.join(cache, 'holders'))) await chmod(path.join(cache, 'holders', f), 0o600);
      const started = Date.now();
      const other = await child('read', { reads, fetchLog, unjudgedWaitMs: 1500 }, { asUser: OTHER }).done;
      expect(other.code).toBe(0);
      expect((other.json as ReadResult).results[0]).toEqual({ key: 'big', hit: false, cached: false });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    },
  );
});
