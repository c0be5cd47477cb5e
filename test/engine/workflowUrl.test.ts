/**
 * `toil run <URL> <jobStore>`: workflow modules fetched from a real loopback HTTP server, the
 * test S3 server and file: URLs, through the real CLI; fetch failures exit 2 before anything is
 * created, and credentials in URLs never reach the output.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { fetchToFile } from '../../src/filestore/download.js';
import { pathExists, toil, type RunResult } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { startTestS3, useTestS3Env, type TestS3 } from '@toil-ts/testbed/s3';

const t = useTempStore();

const HELLO = `
import { defineJob, type WorkflowContext } from 'toil-ts';
const hello = defineJob('hello', async (_ctx, name: string) => 'Hello, ' + name);
export default function workflow(wf: WorkflowContext) { return hello(wf.args[0] ?? 'world'); }
`;

/** A child 'b' that fails in v1 and works in v2; the root 'a' runs first and is not rerun. */
const editable = (version: string, fail: boolean) => `
import { defineJob } from 'toil-ts';
const a = defineJob('a', async () => ${JSON.stringify(version)});
const b = defineJob('b', async (ctx, x: string) => { ${fail ? "throw new Error('old code');" : ''} ctx.log('b got ' + x + ' in ' + ${JSON.stringify(version)}); });
export default function workflow() { const j = a(); j.addChild(b(j.rv())); return j; }
`;

interface Route {
  status?: number;
  type?: string;
  body?: string | Buffer;
  /** Require Basic authentication with this user:password. */
  auth?: string;
  /** Never answer. */
  hang?: boolean;
  /** Send the body without a Content-Length. */
  chunked?: boolean;
}

const routes = new Map<string, Route>();
let server: Server;
let base = '';

function answer(req: IncomingMessage, res: ServerResponse): void {
  const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
  if (!route) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
  if (route.hang) return;
  const expected = route.auth && `Basic ${Buffer.from(route.auth).toString('base64')}`;
  if (expected && req.headers.authorization !== expected) return void res.writeHead(401).end('who are you?');
  const body = route.body ?? '';
  const headers: Record<string, string | number> = { 'content-type': route.type ?? 'text/plain' };
  if (!route.chunked) headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(route.status ?? 200, headers);
  res.end(body);
}

beforeAll(async () => {
  server = createServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  routes.clear();
});

/** Runs toil with a private TMPDIR, so that leftover downloads can be seen. */
async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  await mkdir(path.join(t.dir, 'tmp'), { recursive: true });
  return toil(args, { env: { TMPDIR: path.join(t.dir, 'tmp'), ...env } });
}

async function downloadsLeft(): Promise<string[]> {
  return (await readdir(path.join(t.dir, 'tmp'))).filter((n) => n.startsWith('toil-workflow-'));
}

describe('a workflow from an http:// URL', () => {
  it('is fetched, bundled and run; the downloaded copy is removed', async () => {
    routes.set('/flows/hello.ts', { body: HELLO });
    const r = await run(['run', `${base}/flows/hello.ts`, t.store, '--', 'Alice']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('Hello, Alice');
    expect(r.stderr).toContain(`fetched the workflow from ${base}/flows/hello.ts`);
    expect(await downloadsLeft()).toEqual([]);
  });

  it('sends a user and password in the URL as Basic authentication and never prints them or the query', async () => {
    routes.set('/private/hello.ts', { body: HELLO, auth: 'alice:s3cr3t' });
    const url = `http://alice:s3cr3t@${base.slice('http://'.length)}/private/hello.ts?token=t0k3n`;
    const r = await run(['run', url, t.store, '--logDebug']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('Hello, world');
    expect(r.stderr).toContain(`${base}/private/hello.ts?…`);
    expect(r.stderr + r.stdout).not.toMatch(/s3cr3t|t0k3n|alice/);
    const missing = await run(['run', url.replace('hello.ts', 'gone.ts'), t.store]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).not.toMatch(/s3cr3t|t0k3n|alice/);
  });

  it('picks up edited code at the URL on --restart, and leaves unchanged code alone', async () => {
    routes.set('/edit.ts', { body: editable('v1', true) });
    const url = `${base}/edit.ts`;
    const first = await run(['run', url, t.store, '--retryCount', '0']);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/old code/);
    const same = await run(['run', url, t.store, '--restart', '--retryCount', '0']);
    expect(same.code).toBe(1);
    expect(same.stderr).not.toMatch(/workflow code changed/);
    routes.set('/edit.ts', { body: editable('v2', false) });
    const fixed = await run(['run', url, t.store, '--restart']);
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toMatch(/workflow code changed/);
    // 'a' ran with the old code and is not run again; 'b' runs the new code.
    expect(JSON.parse(fixed.stdout)).toBe('v1');
    expect(fixed.stderr).toMatch(/b got v1 in v2/);
    expect(await downloadsLeft()).toEqual([]);
  });
});

describe('a workflow URL that cannot be used exits 2 naming it, and creates nothing', () => {
  const cases: Array<[string, () => Promise<string>, RegExp]> = [
    ['a 404', async () => `${base}/missing.ts`, /cannot fetch workflow http:\/\/127\.0\.0\.1:\d+\/missing\.ts: HTTP 404/],
    ['a server error', async () => (routes.set('/broken.ts', { status: 500, body: 'oops' }), `${base}/broken.ts`), /broken\.ts: HTTP 500/],
    ['an unreachable host', closedPortUrl, /cannot fetch workflow http:\/\/127\.0\.0\.1:\d+\/wf\.ts: connection refused/],
    [
      'an HTML page',
      async () => (routes.set('/page.ts', { type: 'text/html; charset=utf-8', body: '<!doctype html><p>hi' }), `${base}/page.ts`),
      /page\.ts: the server sent an HTML page, not a module/,
    ],
    [
      'text that does not compile',
      async () => (routes.set('/bad.ts', { body: 'this is not ( a module' }), `${base}/bad.ts`),
      /cannot compile workflow http:\/\/127\.0\.0\.1:\d+\/bad\.ts: http:\/\/127\.0\.0\.1:\d+\/bad\.ts:1:/,
    ],
    [
      'a module too large',
      async () => (routes.set('/big.ts', { body: Buffer.alloc(11 * 1024 * 1024, 0x20) }), `${base}/big.ts`),
      /big\.ts: larger than 10485760 bytes/,
    ],
    ['a URL not naming a module', async () => `${base}/flows/`, /workflow URL must name a \.ts or \.js file/],
    ['an unsupported scheme', async () => 'ftp://127.0.0.1/wf.ts', /unsupported workflow URL 'ftp:\/\/127\.0\.0\.1\/wf\.ts'/],
    ['a malformed URL', async () => 'http://[::1/wf.ts', /invalid workflow URL/],
  ];
  it.each(cases)('%s', async (_what, url, message) => {
    const r = await run(['run', await url(), t.store]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(await pathExists(t.store)).toBe(false);
    expect(await downloadsLeft()).toEqual([]);
    expect(await readdir(t.dir)).toEqual(['tmp']);
  });
});

async function closedPortUrl(): Promise<string> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}/wf.ts`;
}

describe('a workflow from a file: URL', () => {
  it('runs the file in place', async () => {
    const file = path.join(t.dir, 'hello.ts');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, HELLO));
    const r = await run(['run', pathToFileURL(file).href, t.store, '--', 'Bob']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('Hello, Bob');
    expect(await readFile(file, 'utf8')).toBe(HELLO);
  });
});

describe('a workflow from an s3:// URL (test S3 server)', () => {
  let s3: TestS3;
  let restoreEnv = () => {};
  const env = () => ({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PROFILE: '',
  });
  beforeAll(async () => {
    s3 = await startTestS3({ conditionalWrites: true });
    restoreEnv = useTestS3Env(s3);
    const client = makeS3Client(s3SettingsFromEnv('us-east-1'));
    await client.send(new CreateBucketCommand({ Bucket: 'flows' }));
    await client.send(new PutObjectCommand({ Bucket: 'flows', Key: 'team/hello.ts', Body: HELLO }));
  }, 30_000);
  afterAll(async () => {
    restoreEnv();
    await s3.stop();
  });

  it('is fetched with the SDK configuration (endpoint, region, credentials) and run', async () => {
    const r = await run(['run', 's3://flows/team/hello.ts', t.store, '--', 'Carol'], env());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('Hello, Carol');
    expect(await downloadsLeft()).toEqual([]);
  });

  it.each([
    ['a missing object', 's3://flows/team/nope.ts', /cannot fetch workflow s3:\/\/flows\/team\/nope\.ts: .*does not exist/],
    [
      'a missing bucket',
      's3://no-such-bucket/hello.ts',
      /cannot fetch workflow s3:\/\/no-such-bucket\/hello\.ts: .*no bucket no-such-bucket/,
    ],
  ])('exits 2 for %s, creating nothing', async (_what, url, message) => {
    const r = await run(['run', url, t.store], env());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(await pathExists(t.store)).toBe(false);
    expect(await downloadsLeft()).toEqual([]);
  });
});

describe('fetchToFile limits', () => {
  it('gives up on a server that does not answer in time', async () => {
    routes.set('/slow.ts', { hang: true });
    const started = Date.now();
    await expect(
      fetchToFile(`${base}/slow.ts`, path.join(t.dir, 'slow.ts'), { what: 'workflow', limits: { maxBytes: 1000, timeoutMs: 300 } }),
    ).rejects.toThrow(/cannot fetch workflow .*slow\.ts: no complete answer within 0\.3 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('stops reading a body without a length once it passes the limit', async () => {
    routes.set('/endless.ts', { chunked: true, body: Buffer.alloc(5000, 0x20) });
    await expect(
      fetchToFile(`${base}/endless.ts`, path.join(t.dir, 'endless.ts'), { what: 'workflow', limits: { maxBytes: 1000, timeoutMs: 5000 } }),
    ).rejects.toThrow(/endless\.ts: larger than 1000 bytes/);
    const ok = await fetchToFile(`${base}/endless.ts`, path.join(t.dir, 'ok.ts'), {
      what: 'workflow',
      limits: { maxBytes: 5000, timeoutMs: 5000 },
    });
    expect(ok).toBe(5000);
  });
});
