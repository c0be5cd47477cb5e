/**
 * The AWS job store with `--awsMetadata simpledb`, against the test S3 server and the SimpleDB
 * test server (eventual consistency on, as AWS behaves): the conformance suite (with items of
 * normal size, and with tiny items so that records go to S3 through pointers), where things
 * live, creation that is all or nothing, large records, consistent reads inside the
 * eventual-consistency window, and faults (503s, throttling, cut connections, stale writers).
 */
import { describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import { startSimpleDbServer } from '@toil-ts/testbed/simpledb';
import type { TestS3 } from '@toil-ts/testbed/s3';
import { AwsJobStore, type AwsJobStoreOptions } from '../../src/jobstore/aws/awsJobStore.js';
import { parseLocator } from '../../src/jobstore/locator.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { S3Bucket } from '../../src/jobstore/aws/s3Bucket.js';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';
import { describeJobStoreConformance, sampleRecord } from './conformance.js';
import { useSimpleDb } from './useSimpleDb.js';

const s3 = useTestS3Pair();
const sdb = useSimpleDb();
let counter = 0;

function storeName(): string {
  return `d${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}

function makeStore(server: TestS3, name: string, opts: AwsJobStoreOptions = {}): AwsJobStore {
  const loc = parseLocator(`aws:us-east-1:${name}`);
  if (loc.kind !== 'aws') throw new Error('not aws');
  return new AwsJobStore(loc, {
    metadata: 'simpledb',
    logger: { warning: () => {} },
    ...opts,
    settings: { endpoint: server.endpoint, forcePathStyle: true, ...opts.settings },
    simpleDb: { endpoint: sdb.server.endpoint, ...opts.simpleDb },
  });
}

/** A handle as a worker opens it: no --awsMetadata, so the marker decides. */
function follower(server: TestS3, name: string, opts: AwsJobStoreOptions = {}): AwsJobStore {
  return makeStore(server, name, { ...opts, metadata: undefined });
}

function rawBucket(server: TestS3, name: string): S3Bucket {
  const settings = { ...s3SettingsFromEnv('us-east-1'), endpoint: server.endpoint, forcePathStyle: true };
  return new S3Bucket(makeS3Client(settings), `${name}--toil`, { what: name });
}

async function keys(server: TestS3, name: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of rawBucket(server, name).list(prefix)) out.push(o.key);
  return out.sort();
}

async function bucketExists(server: TestS3, name: string): Promise<boolean> {
  const b = rawBucket(server, name);
  return b.client.send(new HeadBucketCommand({ Bucket: `${name}--toil` })).then(
    () => true,
    () => false,
  );
}

describeJobStoreConformance('aws, metadata in SimpleDB (eventually consistent server)', async () => {
  const name = storeName();
  return { store: makeStore(s3.cond, name), other: () => follower(s3.cond, name) };
});

describeJobStoreConformance(
  'aws, metadata in SimpleDB with 2-chunk items: records over 2 KiB in S3 (S3 without conditional writes)',
  async () => {
    const name = storeName();
    const opts = { simpleDb: { maxChunks: 2 } };
    return { store: makeStore(s3.plain, name, opts), other: () => follower(s3.plain, name, opts) };
  },
);

describe('aws job store with SimpleDB metadata: where things live', () => {
  it('keeps records in the domains, none in S3; every later handle follows the marker, and a contradicting choice is a UsageError', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    try {
      expect(await sdb.domains()).toEqual(expect.arrayContaining([`${name}--jobs`, `${name}--files`]));
      await store.createJob(sampleRecord('j1'));
      await store.writeShared('workflow.json', '{"x":1}');
      await store.sendMessage({ kind: 'log', jobId: 'j1', jobName: 'n', text: 'hi', at: 1 });
      const all = await keys(s3.cond, name);
      expect(all.filter((k) => /^(jobs|shared|message-claims|probes)\//.test(k))).toEqual([]);
      expect(all).toContain('toil-jobstore.json');
      const marker = JSON.parse((await rawBucket(s3.cond, name).getSmall('toil-jobstore.json'))!.body.toString()) as Record<
        string,
        unknown
      >;
      expect(marker).toMatchObject({ format: 2, metadata: 'simpledb', domains: { jobs: `${name}--jobs`, files: `${name}--files` } });
      const item = await sdb.client.getAttributes({ domain: `${name}--jobs`, item: 'j1', consistentRead: true });
      expect(item.find((a) => a.name === 'v')?.value).toBe((await store.loadJob('j1')).version);
      const shared = await sdb.client.getAttributes({ domain: `${name}--files`, item: 'shared/workflow.json', consistentRead: true });
      expect(shared.find((a) => a.name === 'c000')?.value).toBe('{"x":1}');

      // openJobStore as workers, status and clean call it: no option, the marker decides.
      const plain = await openJobStore(`aws:us-east-1:${name}`);
      expect((await plain.loadJob('j1')).value.id).toBe('j1');
      expect((await plain.receiveMessages()).map((m) => m.text)).toEqual(['hi']);
      const wrong = await openJobStore(`aws:us-east-1:${name}`, { awsMetadata: 's3' });
      await expect(wrong.loadJob('j1')).rejects.toMatchObject({
        code: 'USAGE',
        message: expect.stringMatching(/keeps its metadata in SimpleDB/),
      });
    } finally {
      await store.destroy();
    }
    expect(await sdb.domains()).not.toEqual(expect.arrayContaining([`${name}--jobs`]));
    expect((await sdb.domains()).filter((d) => d.startsWith(`${name}--`))).toEqual([]);
    expect(await bucketExists(s3.cond, name)).toBe(false);
    await store.destroy(); // idempotent

    // The other way round: an S3-metadata store refuses --awsMetadata simpledb.
    const s3Name = storeName();
    const s3Store = makeStore(s3.cond, s3Name, { metadata: 's3' });
    await s3Store.create();
    try {
      await expect(makeStore(s3.cond, s3Name).loadJob('x')).rejects.toMatchObject({
        code: 'USAGE',
        message: expect.stringMatching(/keeps its metadata in S3.*--awsMetadata simpledb/),
      });
      expect((await sdb.domains()).filter((d) => d.startsWith(`${s3Name}--`))).toEqual([]);
    } finally {
      await s3Store.destroy();
    }
  });
});

describe('aws job store with SimpleDB metadata: a marker naming other domains', () => {
  it("is refused, so that neither use nor destroy reaches another store's domains", async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    const raw = rawBucket(s3.cond, name);
    const good = (await raw.getSmall('toil-jobstore.json'))!.body;
    const marker = JSON.parse(good.toString()) as Record<string, unknown>;
    await raw.put(
      'toil-jobstore.json',
      Buffer.from(JSON.stringify({ ...marker, domains: { jobs: 'victim--jobs', files: 'victim--files' } })),
    );
    try {
      const message = /names SimpleDB domains victim--jobs and victim--files, not this store's/;
      await expect(follower(s3.cond, name).loadJob('x')).rejects.toMatchObject({
        code: 'JOBSTORE',
        message: expect.stringMatching(message),
      });
      await expect(follower(s3.cond, name).destroy()).rejects.toMatchObject({ message: expect.stringMatching(message) });
    } finally {
      await raw.put('toil-jobstore.json', good);
      await store.destroy();
    }
    expect((await sdb.domains()).filter((d) => d.startsWith(`${name}--`))).toEqual([]);
  });
});

describe('aws job store with SimpleDB metadata: creation is all or nothing', () => {
  it('a domain holding items: the domain made so far and the bucket are removed, the foreign domain kept', async () => {
    const name = storeName();
    await sdb.client.createDomain(`${name}--files`);
    await sdb.client.putAttributes({ domain: `${name}--files`, item: 'precious', attributes: [{ name: 'a', value: 'keep me' }] });
    // Most Selects answer an empty page with a NextToken, as AWS does when one runs out of time.
    sdb.server.setFaults({ emptySelectRate: 0.8 });
    try {
      await expect(makeStore(s3.cond, name).create()).rejects.toMatchObject({
        code: 'JOBSTORE_EXISTS',
        message: expect.stringMatching(new RegExp(`SimpleDB domain ${name}--files already exists and holds items`)),
      });
      const domains = await sdb.domains();
      expect(domains).not.toContain(`${name}--jobs`);
      expect(domains).toContain(`${name}--files`);
      expect(await bucketExists(s3.cond, name)).toBe(false);
      expect(await sdb.client.getAttributes({ domain: `${name}--files`, item: 'precious', consistentRead: true })).toEqual([
        { name: 'a', value: 'keep me' },
      ]);
    } finally {
      sdb.server.setFaults({});
      await sdb.client.deleteDomain(`${name}--files`);
    }
  });

  it('SimpleDB refusing the credentials: a clear error naming the domain, and no bucket left', async () => {
    const strict = await startSimpleDbServer({ credentials: [{ accessKeyId: 'SOMEONE-ELSE', secretAccessKey: 'other-secret' }] });
    try {
      const name = storeName();
      const store = makeStore(s3.cond, name, { simpleDb: { endpoint: strict.endpoint } });
      const err = await store.create().then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(err?.message).toMatch(
        new RegExp(`cannot create job store aws:us-east-1:${name}: creating SimpleDB domain ${name}--jobs failed`),
      );
      expect(err?.message).not.toMatch(/S3RVER/);
      expect(await bucketExists(s3.cond, name)).toBe(false);
      expect(await store.exists()).toBe(false);
    } finally {
      await strict.stop();
    }
  });

  it('the marker cannot be written: the domains and the bucket are removed again', async () => {
    const name = storeName();
    await s3.cond.setFaults({ hangPutMatch: 'toil-jobstore.json', hangMs: 50 });
    try {
      const store = makeStore(s3.cond, name, { settings: { retry: { maxAttempts: 2 } } });
      await expect(store.create()).rejects.toBeTruthy();
    } finally {
      await s3.cond.setFaults({});
    }
    expect((await sdb.domains()).filter((d) => d.startsWith(`${name}--`))).toEqual([]);
    expect(await bucketExists(s3.cond, name)).toBe(false);
  });

  it('an existing bucket that is not an empty store is refused before any domain is made', async () => {
    const name = storeName();
    const raw = rawBucket(s3.cond, name);
    await raw.client.send(new CreateBucketCommand({ Bucket: `${name}--toil` }));
    await raw.put('precious.txt', Buffer.from('keep me'));
    await expect(makeStore(s3.cond, name).create()).rejects.toMatchObject({ code: 'JOBSTORE_EXISTS' });
    expect((await sdb.domains()).filter((d) => d.startsWith(`${name}--`))).toEqual([]);
  });
});

describe('aws job store with SimpleDB metadata: records too large for an item', () => {
  it('go to S3 under a new key per version; replaced, losing and deleted versions leave no object', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name, { simpleDb: { maxChunks: 1 } });
    const other = follower(s3.cond, name, { simpleDb: { maxChunks: 1 } });
    await store.create();
    try {
      const big = (tag: string) => sampleRecord('big', { payload: [tag, 'x'.repeat(3000)] });
      const v1 = await store.createJob(big('one'));
      const k1 = await keys(s3.cond, name, 'sdb-records/');
      expect(k1).toEqual([expect.stringMatching(/^sdb-records\/jobs\/big\/[A-Za-z0-9]+$/)]);
      const v2 = await other.updateJob(big('two'), v1);
      const k2 = await keys(s3.cond, name, 'sdb-records/');
      expect(k2).toHaveLength(1);
      expect(k2[0]).not.toBe(k1[0]);
      // The stale writer loses, and its object is removed.
      await expect(store.updateJob(big('stale'), v1)).rejects.toMatchObject({ code: 'CONFLICT' });
      expect(await keys(s3.cond, name, 'sdb-records/')).toEqual(k2);
      expect((await store.loadJob('big')).value.payload).toEqual(['two', 'x'.repeat(3000)]);
      // Small again: inline, and the object of the replaced version goes.
      const v3 = await store.updateJob(sampleRecord('big'), v2);
      expect(await keys(s3.cond, name, 'sdb-records/')).toEqual([]);
      await store.updateJob(big('four'), v3);
      await store.deleteJob('big');
      expect(await keys(s3.cond, name, 'sdb-records/')).toEqual([]);
      // A shared file of 600 KB (a workflow bundle, say) round-trips through S3.
      const bundle = Buffer.alloc(600 * 1024);
      for (let i = 0; i < bundle.length; i++) bundle[i] = (i * 7) & 0xff;
      await store.writeShared('bundle-abc.js', bundle);
      expect((await other.readShared('bundle-abc.js'))?.value.equals(bundle)).toBe(true);
      await store.writeShared('bundle-abc.js', 'small');
      expect(await keys(s3.cond, name, 'sdb-records/')).toEqual([]);
    } finally {
      await store.destroy();
    }
  });
});

describe('aws job store with SimpleDB metadata: eventual consistency', () => {
  it('reads decide on the latest write, though plain reads still see the old value', async () => {
    const name = storeName();
    const a = makeStore(s3.cond, name);
    const b = follower(s3.cond, name);
    await a.create();
    try {
      let v = await a.createJob(sampleRecord('e', { attempts: 0 }));
      let sawStale = false;
      for (let i = 1; i <= 10; i++) {
        v = await a.updateJob(sampleRecord('e', { attempts: i }), v);
        // The server's window: a read without ConsistentRead may still return an older value...
        const plain = await sdb.client.getAttributes({ domain: `${name}--jobs`, item: 'e' });
        if (plain.find((x) => x.name === 'v')?.value !== v) sawStale = true;
        // ...but the store's reads never do, through another handle too.
        const got = await b.loadJob('e');
        expect({ attempts: got.value.attempts, version: got.version }).toEqual({ attempts: i, version: v });
        v = await b.updateJob(sampleRecord('e', { attempts: i }), got.version);
      }
      expect(sawStale).toBe(true);
      // Listing right after creating: every record, at its latest version.
      await Promise.all(Array.from({ length: 15 }, (_, i) => a.createJob(sampleRecord(`l${i}`))));
      const listed: string[] = [];
      for await (const r of b.listJobs()) listed.push(r.value.id);
      expect(listed.sort()).toEqual(['e', ...Array.from({ length: 15 }, (_, i) => `l${i}`)].sort());
      await a.deleteJob('l3');
      expect(await b.jobExists('l3')).toBe(false);
    } finally {
      await a.destroy();
    }
  }, 60_000);
});

describe('aws job store with SimpleDB metadata under faults (5% 503s, 2% throttling, 6% cut connections, 20% empty Select pages; S3 faults too)', () => {
  it("completes the store's operations correctly; stale writers lose", async () => {
    const name = storeName();
    const store = makeStore(s3.plain, name);
    const other = follower(s3.plain, name);
    sdb.server.resetCounts();
    sdb.server.setFaults({ errorRate: 0.05, throttleRate: 0.02, cutRate: 0.06, emptySelectRate: 0.2 });
    await s3.plain.setFaults({ slowDown: 0.05, cut: 0.03 });
    try {
      await store.create();
      const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => store.createJob(sampleRecord(`f${i}`))));
      const v2 = await Promise.all(versions.map((v, i) => other.updateJob(sampleRecord(`f${i}`, { state: 'done', result: i }), v)));
      for (let i = 0; i < 20; i += 4) {
        await expect(store.updateJob(sampleRecord(`f${i}`, { result: 'stale' }), versions[i]!)).rejects.toMatchObject({ code: 'CONFLICT' });
      }
      const all = [];
      for await (const r of store.listJobs()) all.push(r);
      expect(all.map((r) => r.value.result).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(all.find((r) => r.value.id === 'f3')?.version).toBe(v2[3]);

      const lease = await store.writeShared('lease', 'a', { ifAbsent: true });
      await expect(other.writeShared('lease', 'b', { ifAbsent: true })).rejects.toMatchObject({ code: 'CONFLICT' });
      await other.writeShared('lease', 'c', { ifVersion: lease });
      await expect(store.writeShared('lease', 'd', { ifVersion: lease })).rejects.toMatchObject({ code: 'CONFLICT' });
      expect((await store.readShared('lease'))?.value.toString()).toBe('c');

      for (let i = 0; i < 12; i++) await store.sendMessage({ kind: 'log', jobId: 'j', jobName: 'n', text: `m${i}`, at: i });
      const got: string[] = [];
      for (let round = 0; round < 5 && got.length < 12; round++) {
        const [x, y] = await Promise.all([store.receiveMessages(), other.receiveMessages()]);
        got.push(...[...x, ...y].map((m) => m.text ?? ''));
      }
      expect(got.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `m${i}`).sort());
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.deleteJob(`f${i}`)));
      expect(await collectIds(other)).toEqual([]);
      const c = sdb.server.requestCounts();
      expect(c['total']).toBeGreaterThan(100);
      expect((c['fault:error'] ?? 0) + (c['fault:throttle'] ?? 0)).toBeGreaterThan(0);
      expect(c['fault:cut'] ?? 0).toBeGreaterThan(0);
    } finally {
      sdb.server.setFaults({});
      await s3.plain.setFaults({});
      await store.destroy();
    }
  }, 120_000);
});

async function collectIds(store: AwsJobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const r of store.listJobs()) out.push(r.value.id);
  return out;
}
