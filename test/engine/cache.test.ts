/**
 * The node cache through the real CLI (file job store, single_machine workers sharing one
 * work directory): a file read by 10 jobs is downloaded once and linked 9 times; a written
 * file is read by its successor without a download; a small --cacheSize evicts the least
 * recently used unheld file and never one in use; totals reach the log and `toil status`.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { CACHE_DIR } from '../../src/worker/worker.js';

const t = useTempStore();
const MiB = 2 ** 20;

interface Seen {
  ino: number;
  nlink: number;
  sha: string;
}

async function input(name: string, size = MiB): Promise<{ file: string; sha: string }> {
  const data = randomBytes(size);
  const file = path.join(t.dir, name);
  await writeFile(file, data);
  return { file, sha: createHash('sha256').update(data).digest('hex') };
}

async function run(args: string[], wfArgs: string[]) {
  const work = path.join(t.dir, 'work');
  await mkdir(work, { recursive: true });
  return toil(['run', workflow('cache.ts'), t.store, '--workDir', work, '--no-typecheck', ...args, '--', ...wfArgs]);
}

describe('node cache', () => {
  it('downloads a file read by 10 jobs once, and a written file is read by its successor without a download', async () => {
    const { file, sha } = await input('input.bin');
    const r = await run(['--clean', 'never'], ['fan', file, '10']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { reads: Seen[]; written: Seen };
    expect(out.reads).toHaveLength(10);
    for (const s of out.reads) expect(s.sha).toBe(sha);
    // One copy on the node, linked into every job.
    expect(new Set(out.reads.map((s) => s.ino)).size).toBe(1);
    for (const s of out.reads) expect(s.nlink).toBeGreaterThanOrEqual(2);
    expect(out.written.sha).toBe(createHash('sha256').update(Buffer.alloc(MiB, 7)).digest('hex'));
    // 9 hits of the input, 1 of the written file; the input's one download.
    expect(r.stderr).toMatch(/file cache: 10 hits, 1 miss; 10\.0 MiB not downloaded, 1\.0 MiB downloaded/);
    expect(r.stderr).not.toMatch(/ExperimentalWarning/);
    const status = await toil(['status', t.store]);
    expect(status.stdout).toMatch(/cache: +10 hits, 1 miss/);
    const json = JSON.parse((await toil(['status', t.store, '--json'])).stdout) as { cache: unknown };
    expect(json.cache).toEqual({ hits: 10, misses: 1, hitBytes: 10 * MiB, missBytes: MiB });
  });

  it('runs a onceOnNode producer once for jobs in several worker processes', async () => {
    const r = await run(['--maxCores', '4', '--defaultDisk', '64Mi'], ['once', t.dir, '6']);
    expect(r.code).toBe(0);
    expect(await readFile(path.join(t.dir, 'produced'), 'utf8')).toMatch(/^\d+\n$/);
    const got = JSON.parse(r.stdout) as Array<{ images: string; content: string }>;
    expect(got).toHaveLength(6);
    expect(new Set(got.map((g) => g.images)).size).toBe(1);
    for (const g of got) expect(g.content).toBe('an image');
  });

  it.each([
    ['once', 'each runs its own producer, in a directory of its own', 2],
    ['once-shared', 'with { shared: true }, they share one directory, made once', 1],
  ])('two job stores with the same onceOnNode key (%s): %s', async (mode, _what, runs) => {
    const images: string[] = [];
    await mkdir(path.join(t.dir, 'work'), { recursive: true });
    for (const store of [t.store, `${t.store}-2`]) {
      const r = await toil([
        'run',
        workflow('cache.ts'),
        store,
        '--workDir',
        path.join(t.dir, 'work'),
        '--no-typecheck',
        '--',
        mode,
        t.dir,
        '2',
      ]);
      expect(r.code).toBe(0);
      const got = JSON.parse(r.stdout) as Array<{ images: string; content: string }>;
      for (const g of got) expect(g.content).toBe('an image');
      images.push(...new Set(got.map((g) => g.images)));
    }
    expect((await readFile(path.join(t.dir, 'produced'), 'utf8')).split('\n').filter((l) => l !== '')).toHaveLength(runs);
    expect(new Set(images).size).toBe(runs);
  });

  it('with --disableCaching true, every read downloads a private copy', async () => {
    const { file, sha } = await input('input.bin');
    const r = await run(['--disableCaching', 'true'], ['fan', file, '4']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { reads: Seen[] };
    for (const s of out.reads) expect(s.sha).toBe(sha);
    for (const s of out.reads) expect(s.nlink).toBe(1);
    expect(r.stderr).toMatch(/file cache: 0 hits, 5 misses/);
  });

  it('a cache that cannot be opened (a corrupt cache.db): jobs read uncached, and the worker says so once at warning level', async () => {
    const { file, sha } = await input('input.bin');
    await mkdir(path.join(t.dir, 'work', CACHE_DIR), { recursive: true });
    await writeFile(path.join(t.dir, 'work', CACHE_DIR, 'cache.db'), randomBytes(64 * 1024));
    // One worker process at a time (reused for every job): one warning.
    const r = await run(['--maxCores', '1'], ['fan', file, '4']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { reads: Seen[] };
    for (const s of out.reads) expect(s).toMatchObject({ sha, nlink: 1 });
    const warnings = r.stderr.split('\n').filter((l) => / WARNING .*node cache/.test(l));
    expect(warnings).toEqual([
      expect.stringMatching(/the node cache cannot be used \(.*not a database.*\); this worker reads and writes files uncached$/),
    ]);
    expect(r.stderr).toMatch(/file cache: 0 hits, 5 misses/);
  });

  it('a cached copy that a job wrote into is not served to the next job: downloaded again, with a warning in the log', async () => {
    const { file, sha } = await input('input.bin');
    const r = await run([], ['damage', file]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { seen: Seen; after: Seen };
    expect(out.seen.sha).toBe(sha);
    expect(out.after).toMatchObject({ sha, nlink: 2 });
    expect(r.stderr).toMatch(
      / WARNING +\[read-one [^\]]+\] the node's cached copy of file \S+ was damaged \(its bytes do not match its sha256 digest\): not used, downloaded again\n/,
    );
    expect(r.stderr).toMatch(/file cache: 0 hits, 2 misses/);
  });

  it('with a cap smaller than the files read, evicts the least recently used unheld file, never one in use, and completes', async () => {
    const files = await Promise.all(['a', 'b', 'c'].map((n) => input(n)));
    const r = await run(['--cacheSize', String(2.5 * MiB)], ['evict', ...files.map((f) => f.file)]);
    expect(r.code).toBe(0);
    const { first, second } = JSON.parse(r.stdout) as { first: Seen[]; second: Seen[] };
    expect(first.map((s) => s.sha)).toEqual(files.map((f) => f.sha));
    expect(second.map((s) => s.sha)).toEqual([files[2]!.sha, files[1]!.sha, files[0]!.sha]);
    // First job: a and b cached and held, c read uncached. Its successor: c cached in place of
    // a (the least recently used unheld file), b a hit (the same copy), a read uncached since b
    // and c are now in use.
    expect(first.map((s) => s.nlink > 1)).toEqual([true, true, false]);
    expect(second.map((s) => s.nlink > 1)).toEqual([true, true, false]);
    expect(second[1]!.ino).toBe(first[1]!.ino);
    expect(r.stderr).toMatch(/file cache: 1 hit, 5 misses/);
  });
});
