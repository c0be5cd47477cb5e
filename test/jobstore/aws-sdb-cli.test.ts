/**
 * Workflows through the real CLI (`bin/toil.js`, built into dist/) on `aws:` job stores with
 * `--awsMetadata simpledb`, on the test S3 server and the SimpleDB test server (eventual
 * consistency on): results, the choice recorded in the store (status, --restart and clean follow
 * it; the other choice is refused), and faults under which every job still runs exactly once.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { S3Bucket } from '../../src/jobstore/aws/s3Bucket.js';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { openJobStore } from '../../src/jobstore/open.js';
import type { Versioned } from '../../src/jobstore/types.js';
import type { JobRecord } from '../../src/job/types.js';
import { startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';
import { failsFirst } from '../workflows/args.js';
import { useSimpleDb } from './useSimpleDb.js';

const s3 = useTestS3Pair();
const sdb = useSimpleDb();
const t = useTempStore();

const env = (): NodeJS.ProcessEnv => ({ ...s3.env(s3.cond), ...sdb.env() });

function squares(k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += i * i;
  return s;
}

async function domainsOf(locator: string): Promise<string[]> {
  const name = locator.split(':')[2]!;
  return (await sdb.domains()).filter((d) => d.startsWith(`${name}--`)).sort();
}

describe('workflows on an aws: job store with --awsMetadata simpledb', () => {
  it('fans out and sums promised values; the domains and the bucket are removed on success', async () => {
    const loc = s3.locator();
    sdb.server.resetCounts();
    const r = await toil(['run', workflow('../../examples/fanout.ts'), loc, '--awsMetadata', 'simpledb', '--', '24'], { env: env() });
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toBe(squares(24));
    expect(r.stderr).toMatch(/26 job\(s\) run/);
    expect(sdb.server.requestCounts()['PutAttributes'] ?? 0).toBeGreaterThanOrEqual(26);
    expect(await domainsOf(loc)).toEqual([]);
    const status = await toil(['status', loc], { env: env() });
    expect(status.stderr).toMatch(/does not exist/);
  });

  it('runs the engine workflows: promises, files, a failure and its status, retries, a worker that dies', async () => {
    const e = { ...env(), TOIL_AWS_METADATA: 'simpledb' };
    const dir = async (n: string) => {
      const d = path.join(t.dir, n);
      await mkdir(d);
      return d;
    };
    const p = await toil(['run', workflow('promises.ts'), s3.locator()], { env: e });
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toEqual({ sum: 50, fwd: 1005, text: 'made:50:1005', keys: ['fwd', 'sum', 'text'] });

    const input = path.join(t.dir, 'in.txt');
    await writeFile(input, 'hello simpledb');
    const out = path.join(t.dir, 'out.txt');
    const f = await toil(['run', workflow('files.ts'), s3.locator(), '--', input, `file://${out}`], { env: e });
    expect({ code: f.code, stderr: f.code === 0 ? '' : f.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(await readFile(out, 'utf8')).toBe('HELLO SIMPLEDB');

    const loc = s3.locator();
    const diamond = await dir('diamond');
    const d = await toil(['run', workflow('diamond.ts'), loc, '--retryCount', '0', '--', diamond], { env: e });
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/something went wrong here/);
    expect(await traceLines(diamond)).not.toContain('run D');
    const st = await toil(['status', loc, '--json'], { env: env() });
    expect((JSON.parse(st.stdout) as { counts: Record<string, number> }).counts).toEqual({
      total: 5,
      done: 2,
      running: 0,
      pending: 2,
      failed: 1,
    });
    expect((await toil(['clean', loc], { env: env() })).code).toBe(0);
    expect(await domainsOf(loc)).toEqual([]);

    const flaky = await dir('flaky');
    const b = await toil(
      ['run', workflow('flaky.ts'), s3.locator(), '--retryCount', '2', '--retryBackoff', '0', ...failsFirst({ traceDir: flaky, times: 2 })],
      {
        env: e,
      },
    );
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toBe('ok after 3');

    const crash = await dir('crash');
    const c = await toil(['run', workflow('crash.ts'), s3.locator(), '--retryCount', '0', '--clean', 'always', '--', crash], { env: e });
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/job 'exiter'.*: the job called process\.exit\(7\)/);
  }, 180_000);

  it('--awsMetadata simpledb on a file job store, or in a region without SimpleDB, exits 2 and creates nothing', async () => {
    const store = path.join(t.dir, 'store');
    const r = await toil(['run', 'examples/helloworld.ts', store, '--awsMetadata', 'simpledb'], { env: env() });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--awsMetadata simpledb is for AWS job stores \(aws:<region>:<name>\), not the file job store file:/);
    await expect(stat(store)).rejects.toMatchObject({ code: 'ENOENT' });
    // A region without SimpleDB (and no endpoint set): refused before the bucket is made.
    const name = `nosdb-${process.pid}-${Math.random().toString(36).slice(2, 7)}`;
    const noSdb = { ...env(), AWS_ENDPOINT_URL_SIMPLEDB: '', AWS_ENDPOINT_URL: '' };
    await s3.cond.resetCounts();
    const region = await toil(['run', 'examples/helloworld.ts', `aws:eu-north-1:${name}`, '--awsMetadata', 'simpledb'], { env: noSdb });
    expect(region.code).toBe(2);
    expect(region.stderr).toMatch(/SimpleDB is not offered in region 'eu-north-1'/);
    const raw = new S3Bucket(
      makeS3Client({ ...s3SettingsFromEnv('us-east-1'), endpoint: s3.cond.endpoint, forcePathStyle: true }),
      `${name}--toil`,
      {
        what: name,
      },
    );
    expect((await s3.cond.requestCount()).byOp['PUTBucket'] ?? 0).toBe(0);
    await expect(raw.client.send(new HeadBucketCommand({ Bucket: `${name}--toil` }))).rejects.toBeTruthy();
    const bad = await toil(['run', 'examples/helloworld.ts', s3.locator(), '--awsMetadata', 'dynamodb'], { env: env() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/awsMetadata/);
  });

  it('status, --restart and clean follow the choice recorded in the store; the other choice exits 2', async () => {
    const loc = s3.locator();
    const first = await toil(['run', workflow('restartable.ts'), loc, '--awsMetadata', 'simpledb', '--retryCount', '0', '--', t.dir], {
      env: env(),
    });
    expect(first.code).toBe(1);
    expect(await domainsOf(loc)).toHaveLength(2);
    const st = await toil(['status', loc, '--json'], { env: env() });
    expect(st.code).toBe(0);
    expect((JSON.parse(st.stdout) as { counts: Record<string, number> }).counts).toMatchObject({ done: 2, failed: 1 });

    const wrong = await toil(['run', workflow('restartable.ts'), loc, '--restart', '--awsMetadata', 's3'], { env: env() });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/keeps its metadata in SimpleDB \(chosen when it was created\): --awsMetadata s3 cannot change that/);

    await writeFile(path.join(t.dir, 'fixed'), '');
    const again = await toil(['run', workflow('restartable.ts'), loc, '--restart', '--clean', 'never'], { env: env() });
    expect({ code: again.code, stderr: again.code === 0 ? '' : again.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(again.stdout)).toBe('start>first');
    expect([await t.count('first'), await t.count('side'), await t.count('middle'), await t.count('last')]).toEqual([1, 1, 2, 1]);

    const clean = await toil(['clean', loc], { env: env() });
    expect(clean.code).toBe(0);
    expect(await domainsOf(loc)).toEqual([]);
    const gone = await toil(['clean', loc], { env: env() });
    expect(gone.stderr).toMatch(/nothing to clean/);
  }, 120_000);

  it('TOIL_AWS_METADATA=simpledb under faults (SimpleDB: 5% 503s, 2% throttling, 6% cuts, 20% empty Select pages; S3: 5% SlowDown, 3% cuts) and a stale writer: every job runs exactly once', async () => {
    const loc = s3.locator();
    const n = 30;
    sdb.server.resetCounts();
    sdb.server.setFaults({ errorRate: 0.05, throttleRate: 0.02, cutRate: 0.06, emptySelectRate: 0.2 });
    await s3.cond.setFaults({ slowDown: 0.05, cut: 0.03 });
    let stale: { attempts: number; refused: number };
    try {
      const run = startToil(['run', workflow('onceEach.ts'), loc, '--clean', 'never', '--', t.dir, String(n)], {
        env: { ...env(), TOIL_AWS_METADATA: 'simpledb' },
      });
      stale = await staleWriter(loc, run.done);
      const r = await run.done;
      expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
      expect(JSON.parse(r.stdout)).toBe(squares(n));
    } finally {
      sdb.server.setFaults({});
      await s3.cond.setFaults({});
    }
    expect(stale.attempts).toBeGreaterThan(0);
    expect(stale.refused).toBe(stale.attempts);
    const lines = (await traceLines(t.dir)).sort();
    expect(lines).toEqual(['run fan', 'run total', ...Array.from({ length: n }, (_, i) => `run leaf ${i}`)].sort());
    const c = sdb.server.requestCounts();
    expect(c['PutAttributes'] ?? 0).toBeGreaterThanOrEqual(n + 2);
    expect((c['fault:error'] ?? 0) + (c['fault:throttle'] ?? 0)).toBeGreaterThan(0);
    expect(c['fault:cut'] ?? 0).toBeGreaterThan(0);
    expect((await toil(['clean', loc], { env: env() })).code).toBe(0);
    expect(await domainsOf(loc)).toEqual([]);
  }, 180_000);
});

/**
 * A stale writer beside a running workflow: it reads the job records once the leaves exist,
 * waits until the workflow has moved on, and writes each record it read that has changed since
 * back with the version it read (as a worker presumed lost would). Every such write must be
 * refused (CONFLICT, or NOT_FOUND for a record deleted meanwhile).
 */
async function staleWriter(loc: string, done: Promise<unknown>): Promise<{ attempts: number; refused: number }> {
  let finished = false;
  void done.then(() => (finished = true));
  await waitFor(async () => finished || (await traceLines(t.dir)).some((l) => l.startsWith('run leaf')), 60_000, 'a leaf to run');
  const store = await openJobStore(loc);
  const old: Versioned<JobRecord>[] = [];
  for await (const r of store.listJobs()) old.push(r);
  await waitFor(async () => finished || (await traceLines(t.dir)).length >= 12, 60_000, 'more jobs to run');
  let attempts = 0;
  let refused = 0;
  for (const r of old) {
    const now = await store.loadJob(r.value.id).catch((e: unknown) => {
      if ((e as { code?: string }).code === 'NOT_FOUND') return undefined;
      throw e;
    });
    if (now?.version === r.version) continue; // unchanged: writing it back would be no stale write
    attempts++;
    const e = await store.updateJob(r.value, r.version).then(
      () => undefined,
      (err: unknown) => err as { code?: string },
    );
    if (e?.code === 'CONFLICT' || e?.code === 'NOT_FOUND') refused++;
  }
  return { attempts, refused };
}
