/**
 * The job store conformance suite: every backend runs these same tests. Call
 * `describeJobStoreConformance(name, factory)` from a backend's test file; `factory` returns a
 * fresh, not yet created store (and may return a cleanup function).
 */
import { describe, expect, it, beforeEach, afterEach } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { JobRecord } from '../../src/job/types.js';
import type { JobStore } from '../../src/jobstore/types.js';

export interface StoreHandle {
  store: JobStore;
  /** A second handle on the same store, as another process would have. */
  other: () => JobStore | Promise<JobStore>;
  cleanup?: () => Promise<void>;
}

export function sampleRecord(id: string, extra: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    name: 'sample',
    kind: 'function',
    payload: ['a', 1, { b: [true, null] }],
    requirements: { cores: 1, memory: 1024 },
    checkpoint: false,
    children: [],
    followOns: [],
    staticChildren: 0,
    staticFollowOns: 0,
    predecessors: [],
    promiseDeps: [],
    state: 'pending',
    remainingTries: null,
    attempts: 0,
    ...extra,
  };
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function streamText(r: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks).toString();
}

export function describeJobStoreConformance(name: string, factory: () => Promise<StoreHandle>): void {
  describe(`job store conformance: ${name}`, () => {
    let h: StoreHandle;
    let store: JobStore;
    let tmp: string;

    beforeEach(async () => {
      h = await factory();
      store = h.store;
      tmp = await mkdtemp(path.join(os.tmpdir(), 'toil-conf-'));
      await store.create();
    });
    afterEach(async () => {
      await store.destroy().catch(() => {});
      await h.cleanup?.();
      await rm(tmp, { recursive: true, force: true });
    });

    describe('lifecycle', () => {
      it('exists after create, and create again fails with JOBSTORE_EXISTS', async () => {
        expect(await store.exists()).toBe(true);
        await expect(store.create()).rejects.toMatchObject({ code: 'JOBSTORE_EXISTS' });
      });
      it('destroy removes everything and is idempotent', async () => {
        await store.createJob(sampleRecord('j1'));
        const fid = await store.writeFile(Buffer.from('x'), { basename: 'x.txt' });
        await store.writeShared('s', 'v');
        await store.destroy();
        expect(await store.exists()).toBe(false);
        await store.destroy();
        await store.create();
        expect(await store.jobExists('j1')).toBe(false);
        expect(await store.fileExists(fid)).toBe(false);
        expect(await store.readShared('s')).toBeUndefined();
      });
    });

    describe('job records', () => {
      it('creates, loads, and lists records', async () => {
        const r = sampleRecord('job-a', { result: { x: [1, 2] } });
        const v = await store.createJob(r);
        expect(typeof v).toBe('string');
        const got = await store.loadJob('job-a');
        expect(got.value).toEqual(r);
        expect(got.version).toBe(v);
        await store.createJob(sampleRecord('job-b'));
        const ids = (await collect(store.listJobs())).map((x) => x.value.id).sort();
        expect(ids).toEqual(['job-a', 'job-b']);
      });
      it('refuses to create a record twice', async () => {
        await store.createJob(sampleRecord('dup'));
        await expect(store.createJob(sampleRecord('dup'))).rejects.toMatchObject({ code: 'CONFLICT' });
      });
      it('updates with the current version and rejects a stale writer', async () => {
        const v1 = await store.createJob(sampleRecord('u'));
        const v2 = await store.updateJob(sampleRecord('u', { state: 'done', result: 42 }), v1);
        expect(v2).not.toBe(v1);
        // A writer that read v1 and finishes late must lose, even after several updates.
        const v3 = await store.updateJob(sampleRecord('u', { state: 'done', result: 43 }), v2);
        await expect(store.updateJob(sampleRecord('u', { result: 'stale' }), v1)).rejects.toMatchObject({ code: 'CONFLICT' });
        await expect(store.updateJob(sampleRecord('u', { result: 'stale' }), v2)).rejects.toMatchObject({ code: 'CONFLICT' });
        const got = await store.loadJob('u');
        expect(got.value.result).toBe(43);
        expect(got.version).toBe(v3);
      });
      it('lets exactly one of many concurrent writers of the same version win', async () => {
        const v1 = await store.createJob(sampleRecord('race'));
        const other = await h.other();
        const attempts = Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? other : store).updateJob(sampleRecord('race', { result: i }), v1).then(
            () => i,
            (e: { code?: string }) => {
              expect(e.code).toBe('CONFLICT');
              return -1;
            },
          ),
        );
        const winners = (await Promise.all(attempts)).filter((x) => x >= 0);
        expect(winners).toHaveLength(1);
        expect((await store.loadJob('race')).value.result).toBe(winners[0]);
      });
      it('never tells a stale writer it won while newer versions are being written', async () => {
        let v = await store.createJob(sampleRecord('aba'));
        const other = await h.other();
        const winsByExpected = new Map<string, number>();
        const tagOfVersion = new Map<string, string>();
        // Each round, two writers of the version just read write large records, while a chain of
        // small updates through the other handle races past them: writing a large record takes
        // long enough for newer versions to appear (and old ones to be cleaned up) meanwhile.
        const bulk = 'x'.repeat(8_000_000);
        const write = async (s: JobStore, expected: string, tag: string, failure?: string): Promise<string | undefined> => {
          try {
            const next = await s.updateJob(sampleRecord('aba', { result: tag, ...(failure ? { failure } : {}) }), expected);
            winsByExpected.set(expected, (winsByExpected.get(expected) ?? 0) + 1);
            tagOfVersion.set(next, tag);
            return next;
          } catch (e) {
            expect((e as { code?: string }).code).toBe('CONFLICT');
            return undefined;
          }
        };
        const chain = async (round: number): Promise<void> => {
          for (let i = 0; i < 4; i++) {
            const cur = await other.loadJob('aba');
            await write(other, cur.version, `chain-${round}-${i}`);
          }
        };
        for (let round = 0; round < 12; round++) {
          const stale = v;
          const staleWriters = Array.from({ length: 2 }, (_, i) => write(store, stale, `stale-${round}-${i}`, bulk));
          await Promise.all([...staleWriters, chain(round)]);
          v = (await store.loadJob('aba')).version;
        }
        // Two writers that both read the same version cannot both have won.
        for (const [expected, wins] of winsByExpected) expect([expected, wins]).toEqual([expected, 1]);
        const last = await store.loadJob('aba');
        expect(last.value.result).toBe(tagOfVersion.get(last.version));
      });
      it('reports missing records as NOT_FOUND and deletes idempotently', async () => {
        await expect(store.loadJob('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await store.createJob(sampleRecord('d'));
        expect(await store.jobExists('d')).toBe(true);
        await store.deleteJob('d');
        await store.deleteJob('d');
        expect(await store.jobExists('d')).toBe(false);
        await expect(store.loadJob('d')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });
      it('lists many records', async () => {
        const n = 120;
        await Promise.all(Array.from({ length: n }, (_, i) => store.createJob(sampleRecord(`many-${i}`))));
        const all = await collect(store.listJobs());
        expect(all).toHaveLength(n);
        expect(new Set(all.map((x) => x.value.id)).size).toBe(n);
      });
      it('never shows a torn record to a concurrent reader', async () => {
        const big = 'x'.repeat(200_000);
        let v = await store.createJob(sampleRecord('torn', { failure: big }));
        const other = await h.other();
        let stop = false;
        const reader = (async () => {
          let reads = 0;
          while (!stop) {
            const got = await other.loadJob('torn');
            expect(got.value.failure?.length).toBe(200_000);
            reads++;
          }
          return reads;
        })();
        for (let i = 0; i < 15; i++) v = await store.updateJob(sampleRecord('torn', { failure: big, attempts: i }), v);
        stop = true;
        expect(await reader).toBeGreaterThan(0);
      });
    });

    describe('files', () => {
      it('round-trips a file from a path, to a path', async () => {
        const src = path.join(tmp, 'in.txt');
        await writeFile(src, 'hello file');
        const id = await store.writeFile(src);
        expect(id).toContain('in.txt');
        expect(await store.fileExists(id)).toBe(true);
        expect(await store.fileSize(id)).toBe(10);
        const dst = path.join(tmp, 'out.txt');
        await store.readFile(id, dst);
        expect(await readFile(dst, 'utf8')).toBe('hello file');
      });
      it('round-trips streams, with distinct ids for the same name', async () => {
        const a = await store.writeFile(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { basename: 'same.bin' });
        const b = await store.writeFile(Buffer.from('other'), { basename: 'same.bin' });
        expect(a).not.toBe(b);
        expect(await streamText(await store.readFileStream(a))).toBe('abcd');
        expect(await streamText(await store.readFileStream(b))).toBe('other');
      });
      it('handles an empty file and a larger binary file', async () => {
        const empty = await store.writeFile(Buffer.alloc(0), { basename: 'empty' });
        expect(await store.fileSize(empty)).toBe(0);
        const data = Buffer.alloc(3 * 1024 * 1024 + 17);
        for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff;
        const id = await store.writeFile(data, { basename: 'big.bin' });
        const dst = path.join(tmp, 'big.bin');
        await store.readFile(id, dst);
        expect((await readFile(dst)).equals(data)).toBe(true);
      });
      it('deletes idempotently and reports missing files as NOT_FOUND', async () => {
        const id = await store.writeFile(Buffer.from('x'), { basename: 'x' });
        await store.deleteFile(id);
        await store.deleteFile(id);
        expect(await store.fileExists(id)).toBe(false);
        await expect(store.readFile(id, path.join(tmp, 'x'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.readFileStream(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
        await expect(store.fileSize(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      });
      it('deletes the files a job wrote, and only those', async () => {
        const a = await store.writeFile(Buffer.from('a'), { basename: 'a.txt', ownerJobId: 'owner-1' });
        const b = await store.writeFile(Buffer.from('b'), { basename: 'b.txt', ownerJobId: 'owner-1' });
        const c = await store.writeFile(Buffer.from('c'), { basename: 'c.txt', ownerJobId: 'owner-2' });
        const d = await store.writeFile(Buffer.from('d'), { basename: 'd.txt' });
        await store.deleteFile(b);
        expect(await store.deleteFilesOf('owner-1')).toBe(1);
        expect(await store.fileExists(a)).toBe(false);
        expect(await store.fileExists(c)).toBe(true);
        expect(await store.fileExists(d)).toBe(true);
        expect(await store.deleteFilesOf('owner-1')).toBe(0);
        expect(await store.deleteFilesOf('nobody')).toBe(0);
      });
      it('fails cleanly for a missing source path', async () => {
        await expect(store.writeFile(path.join(tmp, 'missing'))).rejects.toBeTruthy();
      });
    });

    describe('shared files', () => {
      it('writes, reads, overwrites and deletes', async () => {
        expect(await store.readShared('config.json')).toBeUndefined();
        const v1 = await store.writeShared('config.json', '{"a":1}');
        const got = await store.readShared('config.json');
        expect(got?.value.toString()).toBe('{"a":1}');
        expect(got?.version).toBe(v1);
        await store.writeShared('config.json', Buffer.from('{"a":2}'));
        expect((await store.readShared('config.json'))?.value.toString()).toBe('{"a":2}');
        await store.deleteShared('config.json');
        await store.deleteShared('config.json');
        expect(await store.readShared('config.json')).toBeUndefined();
      });
      it('supports create-if-absent and compare-and-swap', async () => {
        const v1 = await store.writeShared('lease', 'one', { ifAbsent: true });
        await expect(store.writeShared('lease', 'two', { ifAbsent: true })).rejects.toMatchObject({ code: 'CONFLICT' });
        const v2 = await store.writeShared('lease', 'two', { ifVersion: v1 });
        await expect(store.writeShared('lease', 'three', { ifVersion: v1 })).rejects.toMatchObject({ code: 'CONFLICT' });
        expect((await store.readShared('lease'))?.value.toString()).toBe('two');
        expect((await store.readShared('lease'))?.version).toBe(v2);
      });
    });

    describe('message channel', () => {
      it('delivers each message exactly once, in order', async () => {
        for (let i = 0; i < 5; i++) await store.sendMessage({ kind: 'log', jobId: 'j', jobName: 'n', text: `m${i}`, at: i });
        const first = await store.receiveMessages();
        expect(first.map((m) => m.text)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
        expect(await store.receiveMessages()).toEqual([]);
      });
      it('never delivers a message to two concurrent readers', async () => {
        await Promise.all(
          Array.from({ length: 30 }, (_, i) => store.sendMessage({ kind: 'stats', jobId: `j${i}`, jobName: 'n', wallSeconds: i, at: i })),
        );
        const other = await h.other();
        const [a, b] = await Promise.all([store.receiveMessages(), other.receiveMessages()]);
        const ids = [...a, ...b].map((m) => m.jobId).sort();
        expect(ids).toHaveLength(30);
        expect(new Set(ids).size).toBe(30);
      });
    });

    describe('job logs', () => {
      it('keeps the latest log of a job', async () => {
        expect(await store.readJobLog('j')).toBeUndefined();
        await store.writeJobLog('j', 'first\n');
        await store.writeJobLog('j', 'second\n');
        expect(await store.readJobLog('j')).toBe('second\n');
      });
    });
  });
}
