/**
 * A real S3 server for tests: s3rver 3.7.1 on 127.0.0.1 (an ephemeral port) in a child process,
 * behind a middleware that adds AWS's conditional writes (optional), AbortMultipartUpload,
 * ListMultipartUploads, atomic objects, S3's checks of Signature Version 4 (with the static key
 * and with a test STS's temporary credentials), fault injection and request counters (see
 * `s3rver-child.cjs`).
 *
 * ```ts
 * const s3 = await startTestS3({ conditionalWrites: true });
 * useTestS3Env(s3);            // AWS_ENDPOINT_URL_S3, S3RVER/S3RVER credentials, region
 * await s3.setFaults({ slowDown: 0.05, cut: 0.02 });
 * await s3.stop();
 * ```
 *
 * With `{ sts }` (a test STS, `../sts/server.ts`) it also takes the temporary credentials that
 * STS issues; `useTestS3WebIdentityEnv` points the SDK at both, with no static keys.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setEnv } from '../awsQuery.js';
import type { TestSts } from '../sts/server.js';

export interface TestS3Faults {
  /** Fraction of requests answered 503 SlowDown before they are handled. */
  slowDown?: number;
  /** Fraction of requests whose connection is cut: before handling, after handling, or mid-body. */
  cut?: number;
  /** Fraction of GET responses whose body is cut part-way (in addition to `cut`). */
  cutGetBody?: number;
  /** PUTs of keys containing this are held for `hangMs` (or until the client gives up), then dropped. */
  hangPutMatch?: string;
  hangMs?: number;
}

export interface TestS3Counts {
  total: number;
  byOp: Record<string, number>;
  /** GetObject requests per object, by `bucket/key`. */
  gets: Record<string, number>;
  faults: { slowDown: number; cut: number };
  /** Requests reading or writing object content with and without an SSE-C key. */
  sseC: { with: number; without: number };
  /**
   * Requests by their credentials: Signature Version 4 with the static key or with temporary
   * credentials (both checked by the middleware), Version 2 (checked by s3rver), none; and the
   * refused ones by S3 error code.
   */
  auth: { static: number; temporary: number; signatureV2: number; anonymous: number; refused: Record<string, number> };
}

export interface TestS3 {
  endpoint: string;
  port: number;
  directory: string;
  conditionalWrites: boolean;
  setFaults(f: TestS3Faults): Promise<void>;
  requestCount(): Promise<TestS3Counts>;
  resetCounts(): Promise<void>;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

type IpcCall = (msg: Record<string, unknown>) => Promise<Record<string, unknown>>;

export interface TestS3Options {
  /** honour If-Match / If-None-Match as AWS S3 does (false: ignore them, as many S3-compatible stores do) */
  conditionalWrites: boolean;
  faults?: TestS3Faults;
  /** where the server's data directory is made (default: the OS temp dir) */
  parentDir?: string;
  /**
   * A test STS whose temporary credentials this server accepts (its `sessionKey`): requests
   * signed with an issued key and carrying its session token, while the session lasts.
   */
  sts?: Pick<TestSts, 'sessionKey'>;
}

/** The port the child reports once it listens; rejects if it fails or exits first. */
function whenReady(child: ChildProcess): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onMsg = (m: unknown): void => {
      const msg = m as { type?: string; port?: number; message?: string };
      if (msg.type === 'ready' && typeof msg.port === 'number') {
        child.off('message', onMsg);
        resolve(msg.port);
      } else if (msg.type === 'error') reject(new Error(`test S3 server failed: ${msg.message}`));
    };
    child.on('message', onMsg);
    child.once('exit', (code) => reject(new Error(`test S3 server exited with ${code}`)));
  });
}

/** Request/answer over IPC: each message gets an id, the child answers with the same id. */
function ipcCaller(child: ChildProcess): IpcCall {
  let nextId = 1;
  const waiting = new Map<number, (m: Record<string, unknown>) => void>();
  child.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null) return;
    const msg = m as Record<string, unknown>;
    if (typeof msg['id'] === 'number') {
      const w = waiting.get(msg['id']);
      waiting.delete(msg['id']);
      w?.(msg);
    }
  });
  return (msg) =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error('test S3 server is not running'));
      const id = nextId++;
      waiting.set(id, resolve);
      child.send({ ...msg, id });
    });
}

export async function startTestS3(opts: TestS3Options): Promise<TestS3> {
  const directory = await mkdtemp(path.join(opts.parentDir ?? os.tmpdir(), 'toil-s3rver-'));
  const child: ChildProcess = fork(path.join(here, 's3rver-child.cjs'), [], {
    // s3rver's DES continuation tokens need the legacy provider; the child loads the TypeScript of
    // credentials.ts by Node's type stripping (on by default from Node 22.18)
    execArgv: ['--openssl-legacy-provider', '--experimental-strip-types'],
    env: {
      ...process.env,
      TEST_S3_DIR: directory,
      TEST_S3_CONDITIONAL: opts.conditionalWrites ? '1' : '0',
      TEST_S3_STS_KEY: opts.sts?.sessionKey ?? '',
      NODE_OPTIONS: '',
    },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const call = ipcCaller(child);
  const port = await whenReady(child);
  const s3: TestS3 = {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    directory,
    conditionalWrites: opts.conditionalWrites,
    async setFaults(f) {
      await call({ type: 'faults', faults: f });
    },
    async requestCount() {
      const r = await call({ type: 'counts' });
      return r['counts'] as TestS3Counts;
    },
    async resetCounts() {
      await call({ type: 'resetCounts' });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
  if (opts.faults) await s3.setFaults(opts.faults);
  return s3;
}

/**
 * Points the AWS SDK of this process at the test server: endpoint, region and s3rver's fixed
 * credentials (never a real account). Returns a function that restores the previous values.
 */
export function useTestS3Env(s3: TestS3): () => void {
  return setEnv({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
  });
}

/** How a process finds its web identity: the STS, the role, the token file (as the EKS webhook injects them). */
export interface TestWebIdentity {
  sts: Pick<TestSts, 'endpoint'>;
  roleArn: string;
  /** the token's path (AWS_WEB_IDENTITY_TOKEN_FILE) */
  tokenFile: string;
  /** AWS_ROLE_SESSION_NAME (the SDK makes one up when unset) */
  sessionName?: string;
}

/**
 * The environment a process (or a pod) needs to reach the test server with web identity and no
 * keys: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_STS, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
 * AWS_ROLE_SESSION_NAME when given, AWS_STS_REGIONAL_ENDPOINTS, the region.
 */
export function testS3WebIdentityEnv(s3: Pick<TestS3, 'endpoint'>, id: TestWebIdentity): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_STS: id.sts.endpoint,
    AWS_ROLE_ARN: id.roleArn,
    AWS_WEB_IDENTITY_TOKEN_FILE: id.tokenFile,
    ...(id.sessionName !== undefined ? { AWS_ROLE_SESSION_NAME: id.sessionName } : {}),
    AWS_STS_REGIONAL_ENDPOINTS: 'regional',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/**
 * Points this process's AWS SDK at the test server with web identity (`testS3WebIdentityEnv`):
 * no static keys, no session token, no profile. Returns a function that restores the previous
 * values.
 */
export function useTestS3WebIdentityEnv(s3: TestS3, id: TestWebIdentity): () => void {
  return setEnv({
    ...testS3WebIdentityEnv(s3, id),
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
  });
}
