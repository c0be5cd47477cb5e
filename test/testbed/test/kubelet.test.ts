/**
 * The kubelet where real clusters are less kind than a test double tends to be: local
 * ephemeral storage limits (eviction), volumes and env references to secrets and config maps
 * that do not exist (yet), and image pulls that fail for a while.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, kubectl, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';

beforeAll(async () => {
  // eviction checks every 300 ms instead of 10 s, the volume wait gives up after 2 s instead of 2m3s
  cluster = await startTestCluster({ jobBackoffBaseMs: 100, restartBackoffBaseMs: 200, evictionIntervalMs: 300, mountTimeoutMs: 2000 });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
  expect(cluster.runningPids()).toEqual([]);
});

function pod(name: string, containers: k8s.V1Container[], extra: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod {
  return { metadata: { name }, spec: { restartPolicy: 'Never', containers, ...extra } };
}
function ctr(name: string, script: string, extra: Partial<k8s.V1Container> = {}): k8s.V1Container {
  return { name, image: 'busybox:1.36', command: ['sh', '-c', script], ...extra };
}
async function podDone(name: string, timeoutMs = 30_000): Promise<k8s.V1Pod> {
  return until(
    `pod ${name} done`,
    async () => {
      const p = await c.core.readNamespacedPod({ namespace: ns, name });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    },
    timeoutMs,
  );
}
async function eventsOf(name: string, reason: string): Promise<k8s.CoreV1Event[]> {
  return (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name},reason=${reason}` })).items;
}
const fill = (path: string, mb: number): string => `dd if=/dev/zero of=${path} bs=1M count=${mb} 2>/dev/null; sleep 60`;

describe('local ephemeral storage limits', () => {
  test('a pod over its containers’ total limit is evicted as the kubelet does: Failed, Evicted, no DisruptionTarget', async () => {
    const body = pod('es-pod', [ctr('worker', fill('/scratch/big', 3), { resources: { limits: { 'ephemeral-storage': '1Mi' } } })], {
      volumes: [{ name: 's', emptyDir: {} }],
    });
    body.spec!.containers[0]!.volumeMounts = [{ name: 's', mountPath: '/scratch' }];
    await c.core.createNamespacedPod({ namespace: ns, body });
    const p = await podDone('es-pod');
    expect(p.status?.phase).toBe('Failed');
    expect(p.status?.reason).toBe('Evicted');
    expect(p.status?.message).toBe('Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. ');
    expect((p.status?.conditions ?? []).map((x) => x.type)).not.toContain('DisruptionTarget');
    expect(p.status?.containerStatuses?.[0]?.state?.terminated).toBeDefined();
    const [ev] = await eventsOf('es-pod', 'Evicted');
    expect(ev).toMatchObject({ type: 'Warning', message: p.status?.message, source: { component: 'kubelet' } });
  });

  test('a container over its own limit (writable layer) is named in the message', async () => {
    const limits = { 'ephemeral-storage': '2Mi' };
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('es-ctr', [ctr('a', fill('/root/big', 3), { resources: { limits } }), ctr('b', 'sleep 60', { resources: { limits } })]),
    });
    const p = await podDone('es-ctr');
    expect(p.status).toMatchObject({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'Container a exceeded its local ephemeral storage limit "2Mi". ',
    });
  });

  test('an emptyDir over its sizeLimit', async () => {
    const body = pod('es-dir', [ctr('main', fill('/scratch/big', 2))], { volumes: [{ name: 'scratch', emptyDir: { sizeLimit: '1Mi' } }] });
    body.spec!.containers[0]!.volumeMounts = [{ name: 'scratch', mountPath: '/scratch' }];
    await c.core.createNamespacedPod({ namespace: ns, body });
    const p = await podDone('es-dir');
    expect(p.status).toMatchObject({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ',
    });
  });

  test('a Job counts such an eviction as a failure: a podFailurePolicy ignoring disruptions does not match it', async () => {
    const body: k8s.V1Job = {
      metadata: { name: 'es-job' },
      spec: {
        backoffLimit: 0,
        podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] },
        template: {
          spec: {
            restartPolicy: 'Never',
            containers: [ctr('worker', fill('/root/big', 3), { resources: { limits: { 'ephemeral-storage': '1000000' } } })],
          },
        },
      },
    };
    await c.batch.createNamespacedJob({ namespace: ns, body });
    const j = await jobDone(c.batch, ns, 'es-job', 30_000);
    expect(j.status?.conditions?.find((x) => x.type === 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const pods = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=es-job' })).items;
    expect(pods).toHaveLength(1);
    expect(pods[0]!.status?.message).toBe('Pod ephemeral local storage usage exceeds the total limit of containers 1M. ');
  });

  test('a pod within its limit runs to the end', async () => {
    const body = pod('es-ok', [
      ctr('main', 'dd if=/dev/zero of=/root/f bs=1M count=1 2>/dev/null; sleep 1', {
        resources: { limits: { 'ephemeral-storage': '8Mi' } },
      }),
    ]);
    await c.core.createNamespacedPod({ namespace: ns, body });
    expect((await podDone('es-ok')).status?.phase).toBe('Succeeded');
  });
});

/** The waiting state of a pod's first container, once it has the reason. */
async function waitingAs(name: string, reason: string): Promise<k8s.V1ContainerStateWaiting> {
  return until(`pod ${name} waiting with ${reason}`, async () => {
    const p = await c.core.readNamespacedPod({ namespace: ns, name });
    const w = p.status?.containerStatuses?.[0]?.state?.waiting;
    return w?.reason === reason && p.status?.phase === 'Pending' ? w : undefined;
  });
}

describe('volumes and env references to what does not exist (yet)', () => {
  test('a secret volume whose secret is missing: ContainerCreating, FailedMount events, retried until the secret appears', async () => {
    const body = pod('mount-secret', [ctr('main', 'cat /creds/token', { volumeMounts: [{ name: 'creds', mountPath: '/creds' }] })], {
      volumes: [{ name: 'creds', secret: { secretName: 'late-secret' } }],
    });
    await c.core.createNamespacedPod({ namespace: ns, body });
    await waitingAs('mount-secret', 'ContainerCreating');
    const ev = await until('repeated FailedMount events', async () => {
      const e = (await eventsOf('mount-secret', 'FailedMount')).find((x) => x.message?.startsWith('MountVolume.'));
      return e && (e.count ?? 0) >= 2 ? e : undefined;
    });
    expect(ev).toMatchObject({
      type: 'Warning',
      message: 'MountVolume.SetUp failed for volume "creds" : secret "late-secret" not found',
      source: { component: 'kubelet' },
    });
    const timedOut = await until('the timed-out volume wait', async () =>
      (await eventsOf('mount-secret', 'FailedMount')).find((e) => e.message?.startsWith('Unable to attach')),
    );
    expect(timedOut.message).toBe(
      'Unable to attach or mount volumes: unmounted volumes=[creds], unattached volumes=[], failed to process volumes=[]: context deadline exceeded',
    );
    const [get] = await Promise.all([
      kubectl(cluster.kubeconfigPath, [
        'get',
        'pod',
        'mount-secret',
        '-o',
        'jsonpath={.status.phase} {.status.containerStatuses[0].state.waiting.reason}',
      ]),
    ]);
    expect(get.stdout).toBe('Pending ContainerCreating');
    const made = await kubectl(cluster.kubeconfigPath, ['create', 'secret', 'generic', 'late-secret', '--from-literal=token=hello']);
    expect(made.code).toBe(0);
    expect((await podDone('mount-secret')).status?.phase).toBe('Succeeded');
    expect((await c.core.readNamespacedPodLog({ namespace: ns, name: 'mount-secret' })).trim()).toBe('hello');
  });

  test('a configMap volume whose config map is missing', async () => {
    const body = pod('mount-cm', [ctr('main', 'true', { volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] })], {
      volumes: [{ name: 'cfg', configMap: { name: 'no-such-cm' } }],
    });
    await c.core.createNamespacedPod({ namespace: ns, body });
    await waitingAs('mount-cm', 'ContainerCreating');
    const [ev] = await until('FailedMount', () => eventsOf('mount-cm', 'FailedMount').then((x) => (x.length ? x : undefined)));
    expect(ev!.message).toBe('MountVolume.SetUp failed for volume "cfg" : configmap "no-such-cm" not found');
  });

  test('secretKeyRef to a missing key or secret, configMapKeyRef to a missing key: CreateContainerConfigError, retried', async () => {
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'db' }, stringData: { user: 'u' } } });
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'settings' }, data: { a: '1' } } });
    const refs: Array<[string, k8s.V1EnvVarSource, string]> = [
      ['env-key', { secretKeyRef: { name: 'db', key: 'password' } }, "couldn't find key password in Secret default/db"],
      ['env-secret', { secretKeyRef: { name: 'no-such-secret', key: 'password' } }, 'secret "no-such-secret" not found'],
      ['env-cm', { configMapKeyRef: { name: 'settings', key: 'b' } }, "couldn't find key b in ConfigMap default/settings"],
    ];
    for (const [name, valueFrom] of refs) {
      await c.core.createNamespacedPod({ namespace: ns, body: pod(name, [ctr('main', 'echo "$V"', { env: [{ name: 'V', valueFrom }] })]) });
    }
    for (const [name, , message] of refs) {
      expect(await waitingAs(name, 'CreateContainerConfigError')).toMatchObject({ message });
      const failed = await until(`${name} Failed event`, () => eventsOf(name, 'Failed').then((x) => x[0]));
      expect(failed).toMatchObject({ type: 'Warning', message: `Error: ${message}` });
    }
    // the kubelet keeps trying: once the key is there the container starts
    await c.core.patchNamespacedSecret(
      { namespace: ns, name: 'db', body: { stringData: { password: 'pw' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect((await podDone('env-key')).status?.phase).toBe('Succeeded');
    expect(await c.core.readNamespacedPodLog({ namespace: ns, name: 'env-key' })).toBe('pw\n');
  });
});

describe('image pulls', () => {
  test('pulls failing transiently: ErrImagePull, ImagePullBackOff with a growing back-off, then the pull succeeds', async () => {
    const image = 'registry.example/flaky:1';
    cluster.faults.failImagePulls(image, 2);
    // every status the kubelet writes, from a watch (polling could miss a short back-off)
    const seen: string[] = [];
    const messages = new Map<string, string>();
    const watch = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { fieldSelector: 'metadata.name=flaky-pull' },
      (_type: string, p: k8s.V1Pod) => {
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason && seen[seen.length - 1] !== w.reason) seen.push(w.reason);
        if (w?.reason) messages.set(w.reason, w.message ?? '');
      },
      () => undefined,
    );
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('flaky-pull', [{ name: 'main', image, command: ['sh', '-c', 'echo up'] }]),
    });
    const done = await podDone('flaky-pull');
    watch.abort();
    expect(done.status?.phase).toBe('Succeeded');
    // each failed pull is written as ErrImagePull then ImagePullBackOff; a kubelet whose status
    // writes fall behind (a loaded node) may write only the last state of a round
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen).toEqual(['ErrImagePull', 'ImagePullBackOff', 'ErrImagePull', 'ImagePullBackOff'].slice(0, seen.length));
    expect(messages.get('ErrImagePull')).toMatch(/^Failed to pull image "registry.example\/flaky:1": .*503 Service Unavailable$/);
    expect(messages.get('ImagePullBackOff')).toBe(`Back-off pulling image "${image}"`);
    const evs = (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=flaky-pull' })).items;
    const reasons = evs.map((e) => `${e.reason}: ${e.message}`);
    expect(reasons).toContain(`Pulling: Pulling image "${image}"`);
    expect(reasons).toContainEqual(expect.stringMatching(/^Pulled: Successfully pulled image "registry.example\/flaky:1"/));
    expect(reasons).toContain('Failed: Error: ErrImagePull');
    // two failed pulls: the recorder counts the second on the first's event
    const failedPulls = evs.filter((e) => e.reason === 'Failed' && /503 Service Unavailable/.test(e.message ?? ''));
    expect(failedPulls.reduce((n, e) => n + (e.count ?? 1), 0)).toBe(2);
    expect(reasons).toContain(`BackOff: Back-off pulling image "${image}"`);
  });
});
