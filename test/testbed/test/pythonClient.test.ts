/**
 * A second, independent client: the official Python client (Debian's python3-kubernetes, run by
 * the system python) against the test cluster with the kubeconfig the cluster writes — label and
 * field selectors on list, a refused field selector, a pod's log tail, and a watch with bookmarks
 * that the server ends at its timeoutSeconds and the client resumes from a resourceVersion.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, simpleJob } from '../src/cluster/testutil.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'python_client.py');
const ns = 'default';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  cluster = await startTestCluster({ bookmarkIntervalMs: 500, jobBackoffBaseMs: 100 });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
});

interface Summary {
  jobs: string[];
  pods: string[];
  podsNotSucceeded: string[];
  log: string | null;
  refusal: { status: number; reason: string; message: string } | null;
  watch: { events: string[]; bookmarks: number; streams: number };
}

/** Starts the script; `ready` resolves when its watch is about to start, `done` with its summary. */
function runScript(args: string[]): { ready: Promise<void>; done: Promise<Summary> } {
  const child: ChildProcess = spawn(PYTHON, [SCRIPT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('{"ready": true}')) onReady();
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<Summary>((resolve, reject) => {
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`python client exited ${String(code)}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Summary);
    });
  });
  done.catch(() => onReady());
  return { ready, done };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function configMapLifecycle(): Promise<void> {
  const body = { metadata: { name: 'py-w', labels: { py: 'watch' } }, data: { v: '1' } };
  await c.core.createNamespacedConfigMap({ namespace: ns, body });
  await sleep(3500); // past the script's timeout_seconds: the server ends that stream, the script resumes
  await c.core.patchNamespacedConfigMap(
    { namespace: ns, name: 'py-w', body: { data: { v: '2' } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'py-other', labels: { py: 'no' } } } });
  await sleep(3500);
  await c.core.deleteNamespacedConfigMap({ namespace: ns, name: 'py-w' });
}

test('the official Python client lists with selectors, reads logs, and watches with bookmarks and resumption', async () => {
  await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('py-job', ['sh', '-c', 'echo first; echo last']) });
  await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('py-held', ['true'], { suspend: true }) });
  await jobDone(c.batch, ns, 'py-job');
  const pod = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=py-job' })).items[0]!.metadata!.name!;

  const run = runScript([cluster.kubeconfigPath, ns, 'py-job', 'py=watch']);
  await run.ready;
  await configMapLifecycle();
  const s = await run.done;

  expect(s.jobs).toEqual(['py-job']);
  expect(s.pods).toEqual([pod]);
  expect(s.podsNotSucceeded).toEqual([]);
  expect(s.log).toBe('last\n');
  expect(s.refusal).toEqual({ status: 400, reason: 'BadRequest', message: 'field label not supported: spec.foo' });
  expect(s.watch.events).toEqual(['ADDED py-w:1', 'MODIFIED py-w:2', 'DELETED py-w:2']);
  expect(s.watch.bookmarks).toBeGreaterThan(0);
  expect(s.watch.streams).toBeGreaterThanOrEqual(3);
}, 60_000);
