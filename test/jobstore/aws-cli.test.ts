/**
 * The real CLI (`bin/toil.js`, built into dist/ by `npm test`) on `aws:us-east-1:<name>` job
 * stores on the test S3 server: credentials from the SDK's default chain, and workflows that
 * complete with correct results while 5% of S3 requests fail with 503 SlowDown and connections
 * are cut. (Workflow semantics on S3: aws-engine.test.ts.)
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { toil, workflow } from '../helpers/run.js';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';
import { useTempStore } from '../helpers/tempStore.js';

const s3 = useTestS3Pair();
const t = useTempStore();

const env = s3.env;
const locator = s3.locator;

function squares(k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += i * i;
  return s;
}

describe('credentials by the AWS SDK default chain', () => {
  async function credsDir(profile: string, key: string): Promise<string> {
    const home = await mkdtemp(path.join(os.tmpdir(), 'toil-home-'));
    await mkdir(path.join(home, '.aws'), { recursive: true });
    await writeFile(path.join(home, '.aws', 'credentials'), `[${profile}]\naws_access_key_id = ${key}\naws_secret_access_key = S3RVER\n`);
    return home;
  }
  const noEnvKeys = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_SESSION_TOKEN: '' };

  it('reads ~/.aws/credentials (the secret mounted at /root/.aws), or AWS_PROFILE in AWS_SHARED_CREDENTIALS_FILE', async () => {
    const home = await credsDir('default', 'S3RVER');
    const other = await credsDir('toil-test', 'S3RVER');
    try {
      const a = await toil(['run', 'examples/helloworld.ts', locator()], { env: { ...env(s3.cond), ...noEnvKeys, HOME: home } });
      expect(a.stderr).not.toMatch(/ERROR/);
      expect(a.code).toBe(0);
      const b = await toil(['run', 'examples/helloworld.ts', locator()], {
        env: {
          ...env(s3.cond),
          ...noEnvKeys,
          HOME: t.dir,
          AWS_PROFILE: 'toil-test',
          AWS_SHARED_CREDENTIALS_FILE: path.join(other, '.aws', 'credentials'),
        },
      });
      expect(b.code).toBe(0);
    } finally {
      await rm(home, { recursive: true, force: true });
      await rm(other, { recursive: true, force: true });
    }
  });

  it('names a credentials problem clearly and never prints the secret', async () => {
    const home = await credsDir('default', 'NOT-A-KEY');
    try {
      const r = await toil(['run', 'examples/helloworld.ts', locator()], { env: { ...env(s3.cond), ...noEnvKeys, HOME: home } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/credentials/);
      expect(r.stderr).not.toMatch(/S3RVER/);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('a workflow under S3 faults (5% 503 SlowDown, 3% cut connections, 10% cut GET bodies)', () => {
  it.each([
    ['conditional writes', () => s3.cond],
    ['claim protocol', () => s3.plain],
  ])(
    'completes with correct results (%s)',
    async (_label, server) => {
      const s3 = server();
      const input = path.join(t.dir, 'in.txt');
      await writeFile(input, 'hello faults');
      await s3.resetCounts();
      await s3.setFaults({ slowDown: 0.05, cut: 0.03, cutGetBody: 0.1 });
      try {
        const r = await toil(['run', workflow('../../examples/fanout.ts'), locator(), '--', '20'], { env: env(s3) });
        expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
        expect(JSON.parse(r.stdout)).toBe(squares(20));
        const f = await toil(['run', workflow('files.ts'), locator(), '--', input, `file://${path.join(t.dir, 'out.txt')}`], {
          env: env(s3),
        });
        expect({ code: f.code, stderr: f.code === 0 ? '' : f.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
        expect(await readFile(path.join(t.dir, 'out.txt'), 'utf8')).toBe('HELLO FAULTS');
        const c = await s3.requestCount();
        expect(c.faults.slowDown).toBeGreaterThan(0);
        expect(c.faults.cut).toBeGreaterThan(0);
      } finally {
        await s3.setFaults({});
      }
    },
    60_000,
  );
});
