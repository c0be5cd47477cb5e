/**
 * What a pod may do without: an `optional` secret (volume or secretKeyRef) that does not exist
 * lets the pod start (an empty volume, no variable), where a required one keeps it waiting; and
 * `automountServiceAccountToken: false` (on the pod, or on its service account when the pod
 * does not say) leaves the API token out, as the ServiceAccount admission plugin does.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, until } from '../src/cluster/testutil.js';

const ns = 'default';
let cluster: TestCluster;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }] });
  c = clients(cluster.kubeconfigPath);
  await until('the default service account', () => cluster.get('serviceaccounts', ns, 'default'));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

async function run(body: k8s.V1Pod): Promise<{ pod: k8s.V1Pod; log: string }> {
  const created = await c.core.createNamespacedPod({ namespace: ns, body });
  const name = created.metadata!.name!;
  const pod = await until(`pod ${name} to finish`, async () => {
    const p = await c.core.readNamespacedPod({ namespace: ns, name });
    return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
  });
  return { pod, log: await c.core.readNamespacedPodLog({ namespace: ns, name }) };
}
const shell = (name: string, script: string, spec: Partial<k8s.V1PodSpec> = {}, ctr: Partial<k8s.V1Container> = {}): k8s.V1Pod => ({
  metadata: { name },
  spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', script], ...ctr }], ...spec },
});

describe('optional secrets', () => {
  test('an optional secret volume and secretKeyRef that do not exist: the pod starts with an empty volume and no variable', async () => {
    const { pod, log } = await run(
      shell(
        'optional',
        'ls -A /creds | wc -l; echo "token=${TOKEN:-unset}"',
        { volumes: [{ name: 'creds', secret: { secretName: 'absent', optional: true } }] },
        {
          volumeMounts: [{ name: 'creds', mountPath: '/creds' }],
          env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'absent', key: 'token', optional: true } } }],
        },
      ),
    );
    expect(pod.status?.phase).toBe('Succeeded');
    expect(log).toBe('0\ntoken=unset\n');
  });

  test('the same secret not optional keeps the pod waiting: FailedMount for the volume', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: shell(
        'required',
        'true',
        { volumes: [{ name: 'creds', secret: { secretName: 'absent' } }] },
        { volumeMounts: [{ name: 'creds', mountPath: '/creds' }] },
      ),
    });
    const ev = await until('a FailedMount event', async () => {
      const l = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=required,reason=FailedMount' });
      return l.items[0];
    });
    expect(ev.message).toBe('MountVolume.SetUp failed for volume "creds" : secret "absent" not found');
    expect((await c.core.readNamespacedPod({ namespace: ns, name: 'required' })).status?.phase).toBe('Pending');
  });
});

describe('automountServiceAccountToken', () => {
  const TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';
  const hasTokenVolume = (p: k8s.V1Pod): boolean => (p.spec?.volumes ?? []).some((v) => v.name.startsWith('kube-api-access-'));

  test('by default the token is mounted; false on the pod leaves it out', async () => {
    const on = await run(shell('token-on', `test -s ${TOKEN} && echo mounted`));
    expect(hasTokenVolume(on.pod)).toBe(true);
    expect(on.log).toBe('mounted\n');
    const off = await run(shell('token-off', 'true', { automountServiceAccountToken: false }));
    expect(hasTokenVolume(off.pod)).toBe(false);
    expect(off.pod.spec?.containers[0]?.volumeMounts ?? []).toEqual([]);
  });

  test('false on the service account leaves it out, unless the pod says true', async () => {
    await c.core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'quiet' }, automountServiceAccountToken: false },
    });
    const off = await run(shell('sa-off', 'true', { serviceAccountName: 'quiet' }));
    expect(hasTokenVolume(off.pod)).toBe(false);
    const on = await run(
      shell('sa-overridden', `test -s ${TOKEN} && echo mounted`, { serviceAccountName: 'quiet', automountServiceAccountToken: true }),
    );
    expect(hasTokenVolume(on.pod)).toBe(true);
    expect(on.log).toBe('mounted\n');
  });
});
