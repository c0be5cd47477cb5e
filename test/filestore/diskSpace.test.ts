/**
 * The node cache on a small file system of the test's own (a tmpfs it mounts, as root), where
 * statfs tells the truth about the space. Jobs' disk reservations wait for room, evicting
 * cached files. What a killed worker leaves on the node: its job's directory — the job's output, and hard links that keep cached
 * files' blocks in use — goes when the next process opens the cache, so that evicting a
 * cached file really frees its space (statfs before and after). The capacity is measured from
 * what is on disk, and again when the file system has filled up meanwhile, not only when the
 * cache is idle.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { lines, MiB, useCacheChildren } from './children.js';

const SIZE = 64 * MiB;
const maybe = process.getuid?.() === 0 ? it : it.skip;
/** The mount point of the test's file system. */
let node = '';

// Declared before the temporary directory's hooks: jest runs afterEach hooks in the order declared.
afterEach(() => {
  if (node !== '') execFileSync('umount', ['-l', node]);
  node = '';
});

const { t, child, randomFile } = useCacheChildren();

beforeEach(async () => {
  if (process.getuid?.() !== 0) return;
  node = path.join(t.dir, 'node');
  await mkdir(node);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SIZE}`, 'tmpfs', node]);
});

function free(): number {
  const fs = statfsSync(node);
  return fs.bavail * fs.bsize;
}

describe('reservations', () => {
  maybe('make a job wait while other jobs hold the disk it needs, and evict cached files for it', async () => {
    const { file } = await randomFile('a', 8 * MiB);
    const cache = path.join(node, 'toil-cache');
    await child('read', { reads: [{ key: 'a', source: file }], fetchLog: path.join(t.dir, 'fetches') }, { dir: cache }).done;
    // held long enough that the second job, started after it (a slow start on a loaded machine), must wait
    const first = child('reserve', { bytes: 32 * MiB, holdMs: 6000 }, { dir: cache });
    await first.line('# reserved');
    // 32 MiB reserved and 8 MiB cached of (a little less than) 64: 58 MiB fits only once the
    // first job is done, and then only by evicting the cached file.
    const second = await child('reserve', { bytes: 58 * MiB }, { dir: cache }).done;
    expect(second.json).toMatchObject({ ok: true });
    expect((second.json as { waitedMs: number }).waitedMs).toBeGreaterThan(500);
    expect((await first.done).json).toMatchObject({ ok: true });
    expect(readdirSync(path.join(cache, 'files'))).toEqual([]);
  });
});

describe("a killed worker's directory", () => {
  maybe('is removed when the next process opens the cache, and evicting its cached file then frees the space', async () => {
    const { file } = await randomFile('input', 16 * MiB);
    const cache = path.join(node, 'toil-cache');
    const workDir = path.join(node, 'toil-wf');
    const job = child(
      'job',
      { store: path.join(t.dir, 'store'), source: file, workDir, disk: 12 * MiB, output: 8 * MiB, holdMs: 60_000 },
      { dir: cache },
    );
    const { dir, read } = JSON.parse((await job.line('# ready ')).slice('# ready '.length)) as { dir: string; read: string };
    expect(read.startsWith(dir)).toBe(true);
    job.proc.kill('SIGKILL');
    await job.done;
    const before = free();
    // The next process needs 50 MiB: only by evicting the cached file, whose blocks are free
    // only once the killed job's link to it is gone.
    const next = await child('reserve', { bytes: 50 * MiB }, { dir: cache }).done;
    expect(next.json).toMatchObject({ ok: true });
    expect(existsSync(dir)).toBe(false);
    const after = free();
    expect(after - before).toBeGreaterThanOrEqual(24 * MiB - MiB);
    // The capacity it measured is what is really there: the whole file system but for the
    // cache's own database and directories.
    expect((next.json as { capacity: number }).capacity).toBeGreaterThan(SIZE - 2 * MiB);
    expect((next.json as { capacity: number }).capacity).toBeLessThanOrEqual(SIZE);
  });
});

describe('the capacity', () => {
  maybe('is measured again while another process keeps the cache open, so a file that no longer fits is read uncached', async () => {
    const { file } = await randomFile('input', 30 * MiB);
    const cache = path.join(node, 'toil-cache');
    const reads = [{ key: 'big', source: file }];
    // A process that keeps the cache busy (not idle) the whole time.
    const busy = child('read', { reads: [], holdMs: 60_000 }, { dir: cache });
    await busy.line('# read');
    // Something else fills the file system: 24 MiB are left.
    await writeFile(path.join(node, 'filler'), Buffer.alloc(40 * MiB, 1));
    const fetchLog = path.join(t.dir, 'fetches');
    const reader = await child('read', { reads, fetchLog }, { dir: cache }).done;
    expect(reader.stderr).toBe('');
    expect(reader.code).toBe(0);
    expect((reader.json as { results: unknown[] }).results).toEqual([{ key: 'big', hit: false, cached: false }]);
    expect(await lines(fetchLog)).toEqual([]);
  });
});
