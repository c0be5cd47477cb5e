/**
 * The AWS job store against a real S3 server (s3rver on 127.0.0.1, see `@toil-ts/testbed/s3`): the
 * conformance suite with conditional writes and without (the claim protocol), fault tests
 * (503 SlowDown, cut connections, a stale writer, a killed upload) and set-up errors.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { exportS3Url, importS3Url } from '../../src/filestore/s3Urls.js';
import { AwsJobStore, type AwsJobStoreOptions } from '../../src/jobstore/aws/awsJobStore.js';
import { FileJobStore } from '../../src/jobstore/file/fileJobStore.js';
import { LeaseLostError } from '../../src/errors.js';
import { parseLocator } from '../../src/jobstore/locator.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { withRequestSignal } from '../../src/jobstore/requestSignal.js';
import { S3Bucket } from '../../src/jobstore/aws/s3Bucket.js';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import type { JobStore } from '../../src/jobstore/types.js';
import type { TestS3 } from '@toil-ts/testbed/s3';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';
import { describeJobStoreConformance, sampleRecord } from './conformance.js';

const MiB = 1024 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

const s3 = useTestS3Pair();
const warnings: string[] = [];
let counter = 0;

function storeName(): string {
  return `t${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
}

function makeStore(server: TestS3, name: string, opts: AwsJobStoreOptions = {}): AwsJobStore {
  const loc = parseLocator(`aws:us-east-1:${name}`);
  if (loc.kind !== 'aws') throw new Error('not aws');
  return new AwsJobStore(loc, {
    logger: { warning: (m) => warnings.push(m) },
    ...opts,
    settings: { endpoint: server.endpoint, forcePathStyle: true, partSize: 5 * MiB, ...opts.settings },
  });
}

function rawBucket(server: TestS3, name: string, exact = false): S3Bucket {
  const settings = { ...s3SettingsFromEnv('us-east-1'), endpoint: server.endpoint, forcePathStyle: true };
  return new S3Bucket(makeS3Client(settings), exact ? name : `${name}--toil`, { what: name });
}

async function keys(server: TestS3, name: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of rawBucket(server, name).list(prefix)) out.push(o.key);
  return out;
}

describeJobStoreConformance('aws (S3 with conditional writes)', async () => {
  const name = storeName();
  return { store: makeStore(s3.cond, name), other: () => makeStore(s3.cond, name) };
});

describeJobStoreConformance('aws (S3 without conditional writes: claim protocol)', async () => {
  const name = storeName();
  return { store: makeStore(s3.plain, name), other: () => makeStore(s3.plain, name) };
});

describe('aws job store: set-up', () => {
  it('probes the endpoint: conditional writes where honoured, the claim protocol with a warning where not', async () => {
    const a = makeStore(s3.cond, storeName());
    const b = makeStore(s3.plain, storeName());
    const before = warnings.length;
    await a.create();
    await b.create();
    try {
      const marker = async (s: TestS3, st: AwsJobStore) =>
        JSON.parse((await rawBucket(s, st.bucketName.replace(/--toil$/, '')).getSmall('toil-jobstore.json'))!.body.toString());
      expect((await marker(s3.cond, a)).consistency).toBe('conditional');
      expect((await marker(s3.plain, b)).consistency).toBe('claims');
      const newWarnings = warnings.slice(before);
      expect(newWarnings).toHaveLength(1);
      expect(newWarnings[0]).toMatch(/ignores conditional writes/);
      // Record layout per protocol.
      await a.createJob(sampleRecord('j'));
      await b.createJob(sampleRecord('j'));
      expect(await keys(s3.cond, a.bucketName.replace(/--toil$/, ''), 'jobs/')).toEqual(['jobs/j']);
      expect(await keys(s3.plain, b.bucketName.replace(/--toil$/, ''), 'jobs/')).toEqual([
        expect.stringMatching(/^jobs\/j\/v000000000001-[A-Za-z0-9]+$/),
      ]);
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });

  it('rejects bad regions and names before anything is created (UsageError, exit 2)', async () => {
    // with an S3 endpoint of its own (the test server's) any plain region name is taken; not this
    await expect(openJobStore('aws:moon base:abc')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(openJobStore('aws:us-east-1:Bad_Name')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(openJobStore('aws:us-east-1:x')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(openJobStore('aws:us-east-1')).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('is what openJobStore returns for aws: locators, using AWS_ENDPOINT_URL_S3', async () => {
    const name = storeName();
    const store = await openJobStore(`aws:us-east-1:${name}`);
    expect(store).toBeInstanceOf(AwsJobStore);
    expect(store.locator).toBe(`aws:us-east-1:${name}`);
    expect(await store.exists()).toBe(false);
    await store.create();
    try {
      expect(await store.exists()).toBe(true);
      await store.writeShared('hello', 'world');
      expect((await (await openJobStore(`aws:us-east-1:${name}`)).readShared('hello'))?.value.toString()).toBe('world');
    } finally {
      await store.destroy();
    }
  });

  it('refuses to create an existing store and to use a missing one, with clear errors', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await expect(store.loadJob('x')).rejects.toMatchObject({
      code: 'JOBSTORE_MISSING',
      message: expect.stringContaining('does not exist'),
    });
    await expect(store.listJobs()[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'JOBSTORE_MISSING' });
    await store.create();
    try {
      await expect(makeStore(s3.cond, name).create()).rejects.toMatchObject({
        code: 'JOBSTORE_EXISTS',
        message: expect.stringMatching(/already exists/),
      });
    } finally {
      await store.destroy();
    }
    // A bucket that holds something else is not taken over.
    const other = storeName();
    const raw = rawBucket(s3.cond, other);
    const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
    await raw.client.send(new CreateBucketCommand({ Bucket: `${other}--toil` }));
    await raw.put('precious.txt', Buffer.from('keep me'));
    await expect(makeStore(s3.cond, other).create()).rejects.toMatchObject({
      code: 'JOBSTORE_EXISTS',
      message: expect.stringMatching(/not an empty toil-ts job store/),
    });
    expect((await raw.getSmall('precious.txt'))?.body.toString()).toBe('keep me');
  });

  it('refuses to go on when a conditional-write store is opened on an endpoint that ignores them', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    try {
      // Copy the marker to the s3.plain server: same store, but the endpoint now ignores conditions.
      const marker = (await rawBucket(s3.cond, name).getSmall('toil-jobstore.json'))!.body;
      const raw = rawBucket(s3.plain, name);
      const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
      await raw.client.send(new CreateBucketCommand({ Bucket: `${name}--toil` }));
      await raw.put('toil-jobstore.json', marker);
      await expect(makeStore(s3.plain, name).loadJob('x')).rejects.toMatchObject({ message: expect.stringMatching(/now ignores them/) });
      await makeStore(s3.plain, name).destroy();
    } finally {
      await store.destroy();
    }
  });

  it('refreshes expiring credentials through the SDK provider chain (credential_process with 1 s credentials)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-creds-'));
    const saved = { ...process.env };
    try {
      const calls = path.join(dir, 'calls');
      const script = path.join(dir, 'creds.mjs');
      await writeFile(
        script,
        `import { appendFileSync } from 'node:fs';\nappendFileSync(${JSON.stringify(calls)}, 'x\\n');\n` +
          `console.log(JSON.stringify({ Version: 1, AccessKeyId: 'S3RVER', SecretAccessKey: 'S3RVER', Expiration: new Date(Date.now() + 1000).toISOString() }));\n`,
      );
      await writeFile(path.join(dir, 'config'), `[profile expiring]\ncredential_process = ${process.execPath} ${script}\n`);
      delete process.env['AWS_ACCESS_KEY_ID'];
      delete process.env['AWS_SECRET_ACCESS_KEY'];
      process.env['AWS_CONFIG_FILE'] = path.join(dir, 'config');
      process.env['AWS_SHARED_CREDENTIALS_FILE'] = path.join(dir, 'none');
      process.env['AWS_PROFILE'] = 'expiring';
      const store = makeStore(s3.cond, storeName());
      await store.create();
      try {
        for (let i = 0; i < 3; i++) {
          await store.writeShared('s', `v${i}`);
          await new Promise((r) => setTimeout(r, 1100));
        }
        expect((await store.readShared('s'))?.value.toString()).toBe('v2');
        expect((await readFile(calls, 'utf8')).split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(3);
      } finally {
        await store.destroy();
      }
    } finally {
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_CONFIG_FILE', 'AWS_SHARED_CREDENTIALS_FILE', 'AWS_PROFILE']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reads an SSE-C key file and rejects a bad one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-sse-'));
    try {
      const good = path.join(dir, 'good.key');
      await writeFile(good, Buffer.alloc(32, 0x41));
      const bad = path.join(dir, 'bad.key');
      await writeFile(bad, 'short\n');
      const name = storeName();
      const store = makeStore(s3.cond, name, { sseKeyPath: good });
      await s3.cond.resetCounts();
      await store.create();
      try {
        const id = await store.writeFile(Buffer.alloc(6 * MiB, 3), { basename: 'enc.bin' });
        const out = path.join(dir, 'out.bin');
        await store.readFile(id, out);
        expect((await readFile(out)).equals(Buffer.alloc(6 * MiB, 3))).toBe(true);
        await store.createJob(sampleRecord('enc'));
        expect((await store.loadJob('enc')).value.id).toBe('enc');
        expect(await store.fileSize(id)).toBe(6 * MiB);
        // Every request that reads or writes content carried the key (its MD5 is checked by S3).
        const c = await s3.cond.requestCount();
        expect(c.sseC.with).toBeGreaterThanOrEqual(8);
        expect(c.sseC.without).toBe(0);
      } finally {
        await store.destroy();
      }
      // Or from TOIL_S3_SSE_KEY_FILE (how workers get the leader's --sseKey).
      process.env['TOIL_S3_SSE_KEY_FILE'] = good;
      try {
        const viaEnv = makeStore(s3.cond, storeName());
        await s3.cond.resetCounts();
        await viaEnv.create();
        await viaEnv.writeShared('x', 'y');
        expect((await viaEnv.readShared('x'))?.value.toString()).toBe('y');
        const c = await s3.cond.requestCount();
        expect(c.sseC.without).toBe(0);
        expect(c.sseC.with).toBeGreaterThan(2);
        await viaEnv.destroy();
      } finally {
        delete process.env['TOIL_S3_SSE_KEY_FILE'];
      }
      await expect(makeStore(s3.cond, storeName(), { sseKeyPath: bad }).create()).rejects.toMatchObject({
        code: 'USAGE',
        message: expect.stringMatching(/--sseKey.*32-byte/),
      });
      await expect(makeStore(s3.cond, storeName(), { sseKeyPath: path.join(dir, 'missing') }).create()).rejects.toMatchObject({
        code: 'USAGE',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('aws job store: claim protocol', () => {
  it('is not blocked forever by the claim of a writer that died, once the claim is stale', async () => {
    const name = storeName();
    const store = makeStore(s3.plain, name, { claimTiming: { staleClaimMs: 2000 } });
    await store.create();
    try {
      const v1 = await store.createJob(sampleRecord('d'));
      // A writer claimed version 2 and died before writing it.
      const raw = rawBucket(s3.plain, name);
      await raw.put('jobs/d/c000000000002-deadwriter0000000', Buffer.alloc(0));
      // While the claim is fresh, writers back off (a stale writer is still refused at once).
      await expect(store.updateJob(sampleRecord('d', { result: 'stale' }), '7.nonexistentnonce')).rejects.toMatchObject({
        code: 'CONFLICT',
      });
      await new Promise((r) => setTimeout(r, 3100));
      const v2 = await store.updateJob(sampleRecord('d', { result: 'after' }), v1);
      expect((await store.loadJob('d')).value.result).toBe('after');
      expect((await store.loadJob('d')).version).toBe(v2);
      // The dead claim is cleaned up by the next write.
      await store.updateJob(sampleRecord('d', { result: 'again' }), v2);
      expect((await keys(s3.plain, name, 'jobs/d/')).filter((k) => k.includes('deadwriter'))).toEqual([]);
    } finally {
      await store.destroy();
    }
  });
});

describe('aws job store: claim protocol deadline', () => {
  it('abandons a data write that does not land while its claim is live, and reports the outcome as unknown', async () => {
    const name = storeName();
    const store = makeStore(s3.plain, name, { claimTiming: { staleClaimMs: 1000 } });
    await store.create();
    try {
      const v1 = await store.createJob(sampleRecord('h'));
      await s3.plain.setFaults({ hangPutMatch: 'jobs/h/v000000000002-', hangMs: 5000 });
      const t = Date.now();
      await expect(store.updateJob(sampleRecord('h', { result: 'lost' }), v1)).rejects.toMatchObject({
        code: 'TRANSIENT',
        message: expect.stringMatching(/took too long/),
      });
      expect(Date.now() - t).toBeLessThan(3000);
      await s3.plain.setFaults({});
      expect((await store.loadJob('h')).version).toBe(v1);
      // Its claim stays until stale; then the record can be written again.
      await new Promise((r) => setTimeout(r, 2100));
      await store.updateJob(sampleRecord('h', { result: 'written' }), v1);
      expect((await store.loadJob('h')).value.result).toBe('written');
    } finally {
      await s3.plain.setFaults({});
      await store.destroy();
    }
  });
});

describe('aws job store: request signals', () => {
  it('a write abandoned when its signal aborts says it may or may not have happened, or throws the reason given', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    try {
      const v1 = await store.createJob(sampleRecord('s'));
      await s3.cond.setFaults({ hangPutMatch: 'jobs/s', hangMs: 60_000 });
      const t = performance.now();
      const e = await withRequestSignal(AbortSignal.timeout(500), () => store.updateJob(sampleRecord('s', { result: 'held' }), v1)).catch(
        (x: unknown) => x,
      );
      expect(performance.now() - t).toBeLessThan(3000);
      expect(e).toMatchObject({ code: 'TRANSIENT', context: { abandoned: true } });
      expect((e as Error).message).toMatch(
        /writing jobs\/s in bucket \S+ was abandoned \(its time ran out\); it may or may not have happened/,
      );
      const lost = new LeaseLostError('lost the leader lease', { takenOver: true });
      const aborted = new AbortController();
      await expect(withRequestSignal(aborted.signal, () => store.deleteJob('s'))).resolves.toBeUndefined(); // deletes are not held
      const held = withRequestSignal(aborted.signal, () => store.createJob(sampleRecord('s')));
      setTimeout(() => aborted.abort(lost), 300);
      await expect(held).rejects.toBe(lost);
      await s3.cond.setFaults({});
      expect(await store.jobExists('s')).toBe(false);
    } finally {
      await s3.cond.setFaults({});
      await store.destroy();
    }
  });

  it('the claim protocol stops backing off from a rival claim once its signal aborts', async () => {
    const name = storeName();
    const store = makeStore(s3.plain, name);
    await store.create();
    try {
      const v1 = await store.createJob(sampleRecord('r'));
      // A live rival claim on version 2: without a signal, the writer backs off up to 60 times.
      await rawBucket(s3.plain, name).put('jobs/r/c000000000002-rivalwriter000000', Buffer.alloc(0));
      const t = performance.now();
      await expect(
        withRequestSignal(AbortSignal.timeout(1000), () => store.updateJob(sampleRecord('r', { result: 'late' }), v1)),
      ).rejects.toMatchObject({ code: 'TRANSIENT', context: { abandoned: true } });
      expect(performance.now() - t).toBeLessThan(4000);
      // It left no claim of its own behind.
      expect((await keys(s3.plain, name, 'jobs/r/')).filter((k) => k.includes('/c'))).toEqual(['jobs/r/c000000000002-rivalwriter000000']);
    } finally {
      await store.destroy();
    }
  });
});

describe('aws job store: listings', () => {
  it.each([
    ['conditional writes', () => s3.cond],
    ['claim protocol', () => s3.plain],
  ])('pages through listings (7 keys a page) when listing jobs, receiving messages and destroying (%s)', async (_l, server) => {
    const name = storeName();
    const store = makeStore(server(), name, { settings: { listPageSize: 7 } });
    await store.create();
    try {
      const n = 40;
      await Promise.all(Array.from({ length: n }, (_, i) => store.createJob(sampleRecord(`p${i}`))));
      for (let i = 0; i < 20; i++) await store.sendMessage({ kind: 'log', jobId: 'j', jobName: 'n', text: `m${i}`, at: i });
      await server().resetCounts();
      const seen = new Set<string>();
      for await (const r of store.listJobs()) seen.add(r.value.id);
      expect(seen.size).toBe(n);
      expect((await server().requestCount()).byOp['ListObjects']).toBeGreaterThanOrEqual(6);
      expect((await store.receiveMessages()).map((m) => m.text)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
      await store.destroy();
      expect(await store.exists()).toBe(false);
    } finally {
      await store.destroy();
    }
  });
});

describe('aws job store: files', () => {
  it('streams a multipart file with bounded parts, verifies it, and destroys every object and unfinished upload', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-s3f-'));
    try {
      const data = Buffer.alloc(13 * MiB + 5);
      for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
      const id = await store.writeFile(Readable.from([data.subarray(0, 7 * MiB), data.subarray(7 * MiB)]), {
        basename: 'big.bin',
        ownerJobId: 'j1',
      });
      expect(await store.fileSize(id)).toBe(data.length);
      const out = path.join(dir, 'big.out');
      await store.readFile(id, out);
      expect((await readFile(out)).equals(data)).toBe(true);
      const counts = await s3.cond.requestCount();
      expect(counts.byOp['UploadPart'] ?? 0).toBeGreaterThanOrEqual(3);

      // Corruption on the server is detected on download.
      const objPath = path.join(s3.cond.directory, `${name}--toil`, 'files', id.split('/')[0]!.split('.')[0]!, 'big.bin._S3rver_object');
      const bytes = await readFile(objPath);
      bytes[12345] = bytes[12345]! ^ 0xff;
      await writeFile(objPath, bytes);
      await expect(store.readFile(id, out)).rejects.toMatchObject({ message: expect.stringMatching(/corrupt/) });

      // An unfinished multipart upload is removed by destroy.
      const { CreateMultipartUploadCommand } = await import('@aws-sdk/client-s3');
      const raw = rawBucket(s3.cond, name);
      await raw.client.send(new CreateMultipartUploadCommand({ Bucket: `${name}--toil`, Key: 'files/zzzzzzzz/unfinished' }));
      expect(await raw.listUploads()).toHaveLength(1);
      await store.destroy();
      expect(await store.exists()).toBe(false);
      const { HeadBucketCommand } = await import('@aws-sdk/client-s3');
      await expect(raw.client.send(new HeadBucketCommand({ Bucket: `${name}--toil` }))).rejects.toBeTruthy();
    } finally {
      await store.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('leaves no object and no parts behind when an upload fails', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    try {
      let n = 0;
      const failing = new Readable({
        read() {
          if (++n > 12) this.destroy(new Error('source broke'));
          else this.push(Buffer.alloc(MiB, n));
        },
      });
      await expect(store.writeFile(failing, { basename: 'broken.bin' })).rejects.toThrow(/source broke/);
      expect(await keys(s3.cond, name, 'files/')).toEqual([]);
      expect(await rawBucket(s3.cond, name).listUploads()).toEqual([]);
    } finally {
      await store.destroy();
    }
  });

  // Three minutes, for a loaded machine: the child (the built store, plain Node) sends its first
  // parts in about a second alone.
  it('a killed upload leaves no object (only an unfinished upload, which destroy removes)', async () => {
    const name = storeName();
    const store = makeStore(s3.cond, name);
    await store.create();
    try {
      const child = spawn(process.execPath, ['test/s3/upload-child.mjs', `aws:us-east-1:${name}`], {
        cwd: repo,
        env: { ...process.env, AWS_ENDPOINT_URL_S3: s3.cond.endpoint, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      // Wait until at least two parts (5 MiB each) have been sent, then kill it.
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`the upload child had not sent 15 MiB after 120 s: ${out} ${stderr}`));
        }, 120_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (!/sent (1[5-9]|[2-9]\d) MiB/.test(out)) return;
          clearTimeout(timer);
          resolve();
        });
        child.once('exit', (code) => reject(new Error(`upload child exited early (${code}): ${stderr}`)));
      });
      const raw = rawBucket(s3.cond, name);
      const deadline = Date.now() + 10_000;
      while ((await raw.listUploads()).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(await keys(s3.cond, name, 'files/')).toEqual([]);
      expect((await raw.listUploads()).length).toBe(1);
      await store.destroy();
      expect(await store.exists()).toBe(false);
    } finally {
      await store.destroy();
    }
  }, 180_000);
});

describe('s3:// imports and exports', () => {
  it('streams objects from a user bucket into a job store and back (file and aws stores)', async () => {
    const user = `user-${storeName()}`;
    const raw = rawBucket(s3.cond, user, true);
    const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
    await raw.client.send(new CreateBucketCommand({ Bucket: user }));
    const data = Buffer.alloc(7 * MiB + 11);
    for (let i = 0; i < data.length; i += 101) data[i] = i & 0xff;
    await raw.put('inputs/reads.fastq', data);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-s3url-'));
    const name = storeName();
    const aws = makeStore(s3.cond, name);
    await aws.create();
    const file = new FileJobStore(path.join(dir, 'fs'));
    await file.create();
    try {
      for (const store of [aws, file] as JobStore[]) {
        const id = await importS3Url(`s3://${user}/inputs/reads.fastq`, store);
        expect(id).toMatch(/reads\.fastq$/);
        expect(await store.fileSize(id)).toBe(data.length);
        const out = `s3://${user}/outputs/${store === aws ? 'aws' : 'file'}/copy.fastq`;
        await exportS3Url(store, id, out);
        expect((await raw.getSmall(out.slice(`s3://${user}/`.length)))?.body.equals(data)).toBe(true);
      }
      // A corrupt object (bytes that do not match its ETag) is refused.
      const objPath = path.join(s3.cond.directory, user, 'inputs', 'reads.fastq._S3rver_object');
      const bytes = await readFile(objPath);
      bytes[999] = bytes[999]! ^ 1;
      await writeFile(objPath, bytes);
      await expect(importS3Url(`s3://${user}/inputs/reads.fastq`, aws)).rejects.toMatchObject({
        message: expect.stringMatching(/corrupt/),
      });
      await expect(importS3Url(`s3://${user}/missing`, aws)).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(importS3Url(`s3://no-such-bucket-${name}/x`, aws)).rejects.toMatchObject({
        code: 'NOT_FOUND',
        message: expect.stringMatching(/no bucket/),
      });
      await expect(importS3Url('s3://Bad/x', aws)).rejects.toMatchObject({ code: 'USAGE' });
    } finally {
      await aws.destroy();
      await file.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('aws job store under faults (5% 503 SlowDown, cut connections)', () => {
  for (const which of ['conditional', 'claims'] as const) {
    it(`completes the store's operations correctly (${which})`, async () => {
      const server = which === 'conditional' ? s3.cond : s3.plain;
      const name = storeName();
      const store = makeStore(server, name);
      const other = makeStore(server, name);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-s3fault-'));
      await server.resetCounts();
      await server.setFaults({ slowDown: 0.05, cut: 0.03, cutGetBody: 0.1 });
      try {
        await store.create();
        const versions = await Promise.all(Array.from({ length: 20 }, (_, i) => store.createJob(sampleRecord(`f${i}`))));
        const v2 = await Promise.all(versions.map((v, i) => other.updateJob(sampleRecord(`f${i}`, { state: 'done', result: i }), v)));
        // A stale writer (the first version) is rejected for every record, whatever the faults.
        for (let i = 0; i < 20; i += 5) {
          await expect(store.updateJob(sampleRecord(`f${i}`, { result: 'stale' }), versions[i]!)).rejects.toMatchObject({
            code: 'CONFLICT',
          });
        }
        const all = [];
        for await (const r of store.listJobs()) all.push(r);
        expect(all.map((r) => r.value.result).sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: 20 }, (_, i) => i));
        expect(all.find((r) => r.value.id === 'f3')?.version).toBe(v2[3]);

        const data = Buffer.alloc(11 * MiB + 3);
        for (let i = 0; i < data.length; i += 997) data[i] = i & 0xff;
        const fid = await store.writeFile(data, { basename: 'data.bin' });
        const small = await store.writeFile(Buffer.from('small'), { basename: 's.txt' });
        for (let i = 0; i < 3; i++) {
          const out = path.join(dir, `out${i}`);
          await other.readFile(fid, out);
          expect((await readFile(out)).equals(data)).toBe(true);
        }
        const chunks: Buffer[] = [];
        for await (const c of await other.readFileStream(small)) chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).toString()).toBe('small');

        const lease = await store.writeShared('lease', 'a', { ifAbsent: true });
        await expect(other.writeShared('lease', 'b', { ifAbsent: true })).rejects.toMatchObject({ code: 'CONFLICT' });
        await other.writeShared('lease', 'c', { ifVersion: lease });
        expect((await store.readShared('lease'))?.value.toString()).toBe('c');

        for (let i = 0; i < 10; i++) await store.sendMessage({ kind: 'log', jobId: 'j', jobName: 'n', text: `m${i}`, at: i });
        const [a, b] = await Promise.all([store.receiveMessages(), other.receiveMessages()]);
        expect([...a, ...b].map((m) => m.text).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));

        await store.writeJobLog('f1', 'log text');
        expect(await other.readJobLog('f1')).toBe('log text');
        const counts = await server.requestCount();
        expect(counts.faults.slowDown).toBeGreaterThan(0);
        expect(counts.faults.cut).toBeGreaterThan(0);
      } finally {
        await server.setFaults({});
        await store.destroy();
        await rm(dir, { recursive: true, force: true });
      }
    }, 60_000);
  }
});

export type { JobStore };
