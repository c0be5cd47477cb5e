/**
 * Workflows through the real CLI (`bin/toil.js`, built into dist/ by `npm test`) with an
 * `aws:us-east-1:<name>` job store on the test S3 server: the engine's semantics hold on S3, with
 * and without conditional writes. (Credentials and faults: aws-cli.test.ts.)
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { AwsJobStore } from '../../src/jobstore/aws/awsJobStore.js';
import { parseLocator } from '../../src/jobstore/locator.js';
import { S3Bucket } from '../../src/jobstore/aws/s3Bucket.js';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { toil, traceLines, workflow } from '../helpers/run.js';
import type { TestS3 } from '@toil-ts/testbed/s3';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';
import { useTempStore } from '../helpers/tempStore.js';
import { failsFirst } from '../workflows/args.js';

const s3 = useTestS3Pair();
const t = useTempStore();

const env = s3.env;
const locator = s3.locator;

function storeFor(s3: TestS3, loc: string): AwsJobStore {
  const l = parseLocator(loc);
  if (l.kind !== 'aws') throw new Error('not aws');
  return new AwsJobStore(l, { settings: { endpoint: s3.endpoint, forcePathStyle: true } });
}

function squares(k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += i * i;
  return s;
}

describe.each([
  ['conditional writes', () => s3.cond],
  ['claim protocol', () => s3.plain],
])('workflows on an aws: job store (%s)', (_label, server) => {
  it('fans out, sums promised values, and removes the bucket on success', async () => {
    const loc = locator();
    const r = await toil(['run', workflow('../../examples/fanout.ts'), loc, '--', '24'], { env: env(server()) });
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(squares(24));
    expect(r.stderr).toMatch(/26 job\(s\) run/);
    expect(await storeFor(server(), loc).exists()).toBe(false);
  });

  it('resolves promises', async () => {
    const r = await toil(['run', workflow('promises.ts'), locator()], { env: env(server()) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ sum: 50, fwd: 1005, text: 'made:50:1005', keys: ['fwd', 'sum', 'text'] });
  });
});

describe('workflows on an aws: job store (conditional writes)', () => {
  it('reads each job record back once: the job that resolves its promise (its worker is handed it, its leader is sent it)', async () => {
    await s3.cond.resetCounts();
    const r = await toil(['run', workflow('../../examples/fanout.ts'), locator(), '--', '24'], { env: env(s3.cond) });
    expect(r.code).toBe(0);
    const gets = Object.entries((await s3.cond.requestCount()).gets).filter(([key]) => /\/jobs\/square-[^/]+$/.test(key));
    expect(gets).toHaveLength(24);
    // A warm worker's end carries the records it wrote: the leader reads neither a new child nor a
    // done job back, and hands each new job's record to the worker of its first issue.
    for (const [, n] of gets) expect(n).toBe(1);
  });

  it('imports from s3://, passes, reads, deletes and exports files to s3://', async () => {
    const user = `user-${process.pid}-${Math.random().toString(36).slice(2, 9)}`;
    const raw = new S3Bucket(makeS3Client({ ...s3SettingsFromEnv('us-east-1'), endpoint: s3.cond.endpoint, forcePathStyle: true }), user, {
      what: user,
    });
    await raw.client.send(new CreateBucketCommand({ Bucket: user }));
    await raw.put('in/hello.txt', Buffer.from('hello files'));
    const loc = locator();
    const r = await toil(
      ['run', workflow('files.ts'), loc, '--clean', 'never', '--', `s3://${user}/in/hello.txt`, `s3://${user}/out/result.txt`],
      { env: env(s3.cond) },
    );
    expect(r.stderr).not.toMatch(/ERROR/);
    expect(r.code).toBe(0);
    const value = JSON.parse(r.stdout) as { out: string; scratch: string };
    expect((await raw.getSmall('out/result.txt'))?.body.toString()).toBe('HELLO FILES');
    const js = storeFor(s3.cond, loc);
    expect(await js.fileExists(value.out)).toBe(true);
    expect(await js.fileExists(value.scratch)).toBe(false);
    const clean = await toil(['clean', loc], { env: env(s3.cond) });
    expect(clean.code).toBe(0);
    expect(await js.exists()).toBe(false);
  });

  it('propagates failures, keeps the store, and reports status from S3', async () => {
    const loc = locator();
    const r = await toil(['run', workflow('diamond.ts'), loc, '--retryCount', '0', '--', t.dir], { env: env(s3.cond) });
    expect(r.code).toBe(1);
    const lines = await traceLines(t.dir);
    expect(lines).toContain('run A');
    expect(lines).not.toContain('run D');
    expect(r.stderr).toMatch(/something went wrong here/);
    const status = await toil(['status', loc, '--json'], { env: env(s3.cond) });
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { counts: Record<string, number> };
    expect(s.counts).toEqual({ total: 5, done: 2, running: 0, pending: 2, failed: 1 });
    await toil(['clean', loc], { env: env(s3.cond) });
  });

  it('reruns a checkpoint, retries a flaky job', async () => {
    const a = await toil(['run', workflow('checkpoint.ts'), locator(), '--retryBackoff', '0', '--', t.dir], { env: env(s3.cond) });
    expect(a.code).toBe(0);
    expect(JSON.parse(a.stdout)).toBe('child ok');
    const b = await toil(
      ['run', workflow('flaky.ts'), locator(), '--retryCount', '2', '--retryBackoff', '0', ...failsFirst({ traceDir: t.dir, times: 2 })],
      { env: env(s3.cond) },
    );
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toBe('ok after 3');
  });

  it('runs children after their parent and follow-ons after the subtree; chains single successors', async () => {
    const r = await toil(['run', workflow('ordering.ts'), locator(), '--', t.dir], { env: env(s3.cond) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('root');
    const lines = await traceLines(t.dir);
    const at = (l: string): number => {
      const i = lines.indexOf(l);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    for (const c of ['A', 'B']) expect(at(`start ${c}`)).toBeGreaterThan(at('end root'));
    for (const c of ['root', 'A', 'B', 'A1', 'A2', 'A2f']) expect(at('start F')).toBeGreaterThan(at(`end ${c}`));
    const chain = await toil(['run', workflow('chain.ts'), locator(), '--logDebug', '--', '6'], { env: env(s3.cond) });
    expect(chain.code).toBe(0);
    expect(JSON.parse(chain.stdout)).toBe('012345');
    expect(chain.stderr.match(/issued job/g)).toHaveLength(1);
  });

  it('fails only the job whose worker died; keeps job logs (--writeLogs, ctx.log relay, status text)', async () => {
    const loc = locator();
    const r = await toil(['run', workflow('crash.ts'), loc, '--retryCount', '0', '--', t.dir], { env: env(s3.cond) });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'exiter'.*: the job called process\.exit\(7\)/);
    expect(r.stderr).toMatch(/2 job\(s\) failed/);
    const s = JSON.parse((await toil(['status', loc, '--json'], { env: env(s3.cond) })).stdout) as { counts: Record<string, number> };
    expect(s.counts.done).toBe(5);
    await toil(['clean', loc], { env: env(s3.cond) });

    const logs = path.join(t.dir, 'logs');
    const d = await toil(
      ['run', workflow('diamond.ts'), locator(), '--retryCount', '0', '--writeLogs', logs, '--clean', 'always', '--', t.dir],
      { env: env(s3.cond) },
    );
    expect(d.code).toBe(1);
    const failed = (await readdir(logs)).filter((f) => f.startsWith('node_'));
    expect(failed.length).toBe(1);
    expect(await readFile(path.join(logs, failed[0]!), 'utf8')).toMatch(/node B: something went wrong here[\s\S]*B failed on purpose/);

    const hello = locator();
    const h = await toil(['run', 'examples/helloworld.ts', hello, '--clean', 'never', '--', 'Ada'], { env: env(s3.cond) });
    expect(h.code).toBe(0);
    expect(h.stderr).toMatch(/\[hello hello-[a-z0-9]+\] Hello, Ada/);
    const st = await toil(['status', hello], { env: env(s3.cond) });
    expect(st.stdout).toMatch(/jobs: +1 total, 1 done, 0 running, 0 pending, 0 failed/);
    await toil(['clean', hello], { env: env(s3.cond) });
  });

  it('clear errors: a bad locator exits 2 before anything is created; a missing store for status', async () => {
    const bad = await toil(['run', workflow('../../examples/fanout.ts'), 'aws:us-east-1:Bad_Name'], { env: env(s3.cond) });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid AWS job store name/);
    const missing = await toil(['status', locator()], { env: env(s3.cond) });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/does not exist/);
  });
});
