/**
 * Runs the test cluster in a child process (its own event loop, so a busy test process cannot
 * slow the API server, and vice versa). The handle mirrors TestCluster with every call async;
 * calls travel over HTTPS to the cluster's admin-only /_testcluster/call endpoint.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { RequestFault, TestCluster, TestClusterFaults, TestClusterOptions } from './index.js';

type Async<T> = { [K in keyof T]: T[K] extends (...a: infer A) => infer R ? (...a: A) => Promise<Awaited<R>> : T[K] };

/** What the child prints on its first line (`cli.ts --json`). */
export interface ClusterInfo {
  kubeconfigPath: string;
  server: string;
  issuer: string;
  port: number;
  namespace: string;
  caPath: string;
  stateDir: string;
}

export interface TestClusterProcess
  extends
    ClusterInfo,
    Omit<
      Async<
        Pick<
          TestCluster,
          | 'requestCounts'
          | 'resetRequestCounts'
          | 'createToken'
          | 'kubeconfigFor'
          | 'inClusterMount'
          | 'hostPathDir'
          | 'addNode'
          | 'watchCount'
          | 'openWatches'
          | 'runningPids'
        >
      >,
      never
    > {
  pid: number;
  faults: Omit<Async<TestClusterFaults>, 'failRequests' | 'delayRequests' | 'delayWatchEvents'> & {
    failRequests(f: RequestFault): Promise<{ remove: () => Promise<void>; hits: () => Promise<number> }>;
    delayRequests(d: Parameters<TestClusterFaults['delayRequests']>[0]): Promise<{ remove: () => Promise<void> }>;
    delayWatchEvents(d: Parameters<TestClusterFaults['delayWatchEvents']>[0]): Promise<{ remove: () => Promise<void> }>;
  };
  stop(): Promise<void>;
}

/** The package's root (`src/cluster` → the package). */
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

async function bundle(): Promise<string> {
  const out = join(packageRoot, '.tmp', `test-cluster-cli-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.mjs`);
  mkdirSync(dirname(out), { recursive: true });
  const esbuild = await import('esbuild');
  await esbuild.build({
    entryPoints: [join(packageRoot, 'src/cluster/cli.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: out,
    logLevel: 'warning',
  });
  return out;
}

type Call = <R>(method: string, ...args: unknown[]) => Promise<R>;

async function spawnCluster(options: TestClusterOptions): Promise<{ child: ChildProcess; info: ClusterInfo }> {
  const script = await bundle();
  const child: ChildProcess = spawn(process.execPath, [script, '--json', '--options', JSON.stringify(options)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const info = await new Promise<ClusterInfo>((resolveInfo, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (l) => {
      try {
        resolveInfo(JSON.parse(l) as ClusterInfo);
      } catch (e) {
        reject(e as Error);
      }
    });
    child.once('exit', (code) => reject(new Error(`test cluster process exited with ${String(code)}`)));
  });
  rmSync(script, { force: true });
  return { child, info };
}

/** Calls over HTTPS to the cluster's admin-only /_testcluster/call endpoint, as the admin user. */
function controlClient(info: ClusterInfo): Call {
  const kubeconfig = JSON.parse(readFileSync(info.kubeconfigPath, 'utf8')) as { users: { user: { token: string } }[] };
  const token = kubeconfig.users[0]!.user.token;
  const ca = readFileSync(info.caPath);
  return <R>(method: string, ...args: unknown[]): Promise<R> =>
    new Promise((res, rej) => {
      const req = https.request(
        `${info.server}/_testcluster/call`,
        { method: 'POST', ca, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } },
        (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (d: Buffer) => chunks.push(d));
          r.on('end', () => {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { result?: unknown; message?: string };
            if (r.statusCode === 200) res(body.result as R);
            else rej(new Error(body.message ?? `control call failed: ${String(r.statusCode)}`));
          });
        },
      );
      req.on('error', rej);
      req.end(JSON.stringify({ method, args }));
    });
}

function remoteFaults(call: Call): TestClusterProcess['faults'] {
  const f =
    (name: string) =>
    <R>(...args: unknown[]): Promise<R> =>
      call<R>(`faults.${name}`, ...args);
  return {
    failRequests: async (fault) => {
      const id = await call<number>('faults.failRequests', fault);
      return { remove: () => call('faults.removeFault', id), hits: () => call('faults.faultHits', id) };
    },
    delayRequests: async (d) => {
      const id = await call<number>('faults.delayRequests', d);
      return { remove: () => call('faults.removeFault', id) };
    },
    delayWatchEvents: async (d) => {
      const id = await call<number>('faults.delayWatchEvents', d);
      return { remove: () => call('faults.removeFault', id) };
    },
    clearRequestFaults: f('clearRequestFaults'),
    dropWatches: f('dropWatches'),
    expireWatches: f('expireWatches'),
    compact: f('compact'),
    evictPod: f('evictPod'),
    oomKill: f('oomKill'),
    loseNode: f('loseNode'),
    delayScheduling: f('delayScheduling'),
    pauseScheduling: f('pauseScheduling'),
    resumeScheduling: f('resumeScheduling'),
    markImageMissing: f('markImageMissing'),
    unmarkImageMissing: f('unmarkImageMissing'),
    failImagePulls: f('failImagePulls'),
    loseJobEndings: f('loseJobEndings'),
  };
}

function stopper(child: ChildProcess): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () => {
    stopped ??= new Promise<void>((res) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        res();
        return;
      }
      child.once('exit', () => res());
      child.kill('SIGTERM');
    });
    return stopped;
  };
}

/** Starts the cluster as a child process (Node 22: process.execPath must be Node 22). */
export async function startTestClusterProcess(
  options: Omit<TestClusterOptions, 'images'> & { images?: TestClusterOptions['images'] } = {},
): Promise<TestClusterProcess> {
  const { child, info } = await spawnCluster(options);
  const call = controlClient(info);
  return {
    ...info,
    pid: child.pid!,
    faults: remoteFaults(call),
    requestCounts: () => call('requestCounts'),
    resetRequestCounts: () => call('resetRequestCounts'),
    createToken: (...a) => call('createToken', ...a),
    kubeconfigFor: (...a) => call('kubeconfigFor', ...a),
    inClusterMount: (...a) => call('inClusterMount', ...a),
    hostPathDir: (...a) => call('hostPathDir', ...a),
    addNode: (...a) => call('addNode', ...a),
    watchCount: (...a) => call('watchCount', ...a),
    openWatches: (...a) => call('openWatches', ...a),
    runningPids: () => call('runningPids'),
    stop: stopper(child),
  };
}
