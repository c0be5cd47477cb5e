/**
 * Termination signals as on a real node: a deleted pod's containers get SIGTERM at their PID 1,
 * then SIGKILL when terminationGracePeriodSeconds (default 30) ends. A Node process as PID 1 of
 * its PID namespace ignores SIGTERM unless it handles it, so it goes only at the grace period's
 * end; with tini as the image's entrypoint, tini forwards SIGTERM and the pod goes at once.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { imageRootName, startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, until } from '../src/cluster/testutil.js';
import { STORAGE, buildTestImage, requireImageTools } from './fixtures/testImages.js';

const tag = `toil-ts-sigtest-${randomBytes(4).toString('hex')}`;
/** Node, no init: what `command: [node, …]` makes of any image */
const NODE_IMAGE = `${tag}-node:v1`;
/** Node under tini (ENTRYPOINT ["/usr/bin/tini", "--"]), as the toil-ts image is built */
const TINI_IMAGE = `${tag}-tini:v1`;
const ns = 'default';
const WAIT_MS = 120_000;
const GRACE_S = 6;
jest.setTimeout(3 * WAIT_MS);

let cluster: TestCluster | undefined;
let c: ReturnType<typeof clients>;
const ids: string[] = [];

beforeAll(async () => {
  requireImageTools({ tini: true });
  ids.push(
    buildTestImage({ name: NODE_IMAGE, user: '', node: true }),
    buildTestImage({ name: TINI_IMAGE, user: '', node: true, tini: true, entrypoint: ['/usr/bin/tini', '--'] }),
  );
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }], containerImages: { storageDriver: 'vfs' } });
  c = clients(cluster.kubeconfigPath);
}, 5 * 60_000);

afterAll(async () => {
  await cluster?.stop();
  for (const id of ids) spawnSync('buildah', [...STORAGE, 'rm', imageRootName(id)], { stdio: 'ignore' });
  spawnSync('buildah', [...STORAGE, 'rmi', NODE_IMAGE, TINI_IMAGE], { stdio: 'ignore' });
}, 60_000);

/**
 * A Node program that says it is up (and its PID), then idles; with `handler`, it leaves on
 * SIGTERM saying so, half a second later (so that the test reads the line before the pod, and
 * its log, are gone: a loaded machine once took longer than the exit to answer the first read).
 */
const program = (handler: boolean): string =>
  `${handler ? 'process.on("SIGTERM", () => { console.log("SIGTERM"); setTimeout(() => process.exit(0), 500); });' : ''} console.log("up as pid " + process.pid); setInterval(() => {}, 1000);`;

async function startPod(name: string, image: string, container: Partial<k8s.V1Container>): Promise<void> {
  await c.core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name },
      spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: GRACE_S, containers: [{ name: 'main', image, ...container }] },
    },
  });
  await until(`${name} to be up`, async () => (await c.core.readNamespacedPodLog({ namespace: ns, name })).includes('up as pid'), WAIT_MS);
}

/** Deletes the pod (its own grace period) and answers how long it took to go, in ms, and its last log. */
async function deleteAndTime(name: string): Promise<{ ms: number; log: string }> {
  let log = '';
  const t0 = Date.now();
  await c.core.deleteNamespacedPod({ namespace: ns, name });
  await until(
    `${name} to be gone`,
    async () => {
      log = await c.core.readNamespacedPodLog({ namespace: ns, name }).catch(() => log);
      return !cluster!.list('pods', ns).some((p) => p.metadata.name === name);
    },
    60_000,
    20,
  );
  return { ms: Date.now() - t0, log };
}

describe('SIGTERM to PID 1', () => {
  test('a Node PID 1 without a SIGTERM handler is not stopped by SIGTERM: it goes when the grace period ends', async () => {
    await startPod('node-pid1', NODE_IMAGE, { command: ['node', '-e', program(false)] });
    const { ms, log } = await deleteAndTime('node-pid1');
    expect(log).toBe('up as pid 1\n');
    expect(ms).toBeGreaterThanOrEqual(GRACE_S * 1000 - 500);
    expect(ms).toBeLessThan(GRACE_S * 1000 + 10_000);
  });

  test('a Node PID 1 that handles SIGTERM gets it at once', async () => {
    await startPod('node-handler', NODE_IMAGE, { command: ['node', '-e', program(true)] });
    const { ms, log } = await deleteAndTime('node-handler');
    expect(log).toBe('up as pid 1\nSIGTERM\n');
    expect(ms).toBeLessThan(GRACE_S * 1000 - 1000);
  });

  test("with tini as the image's entrypoint (args keep it), SIGTERM reaches Node at once and it goes", async () => {
    await startPod('tini-node', TINI_IMAGE, { args: ['node', '-e', program(false)] });
    const { ms, log } = await deleteAndTime('tini-node');
    // tini is PID 1, Node its child
    expect(log).not.toBe('up as pid 1\n');
    expect(log).toMatch(/^up as pid \d+\n$/);
    expect(ms).toBeLessThan(GRACE_S * 1000 - 1000);
  });

  test('a command replaces the entrypoint: tini is gone and Node is PID 1 again', async () => {
    await startPod('tini-replaced', TINI_IMAGE, { command: ['node', '-e', program(false)] });
    const { ms, log } = await deleteAndTime('tini-replaced');
    expect(log).toBe('up as pid 1\n');
    expect(ms).toBeGreaterThanOrEqual(GRACE_S * 1000 - 500);
  });

  test('without a terminationGracePeriodSeconds, a pod is given 30 s', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'default-grace' },
        spec: { containers: [{ name: 'main', image: NODE_IMAGE, command: ['node', '-e', program(false)] }] },
      },
    });
    await until(
      'default-grace to be up',
      async () => (await c.core.readNamespacedPodLog({ namespace: ns, name: 'default-grace' })).includes('up'),
      WAIT_MS,
    );
    const deleted = await c.core.deleteNamespacedPod({ namespace: ns, name: 'default-grace' });
    expect(deleted.metadata?.deletionGracePeriodSeconds).toBe(30);
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'default-grace', gracePeriodSeconds: 0 });
  });
});
