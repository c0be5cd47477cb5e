/**
 * Security contexts honoured by the kubelet, in image mode (containers inside tiny buildah
 * images) and for host processes: runAsNonRoot refusals with the kubelet's messages, users and
 * groups, fsGroup on the volumes the kubelet manages, readOnlyRootFilesystem, no_new_privs and
 * capabilities.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { imageRootName, startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, until } from '../src/cluster/testutil.js';
import { STORAGE, buildTestImage, requireImageTools } from './fixtures/testImages.js';

const tag = `toil-ts-sctest-${randomBytes(4).toString('hex')}`;
/** no User: runs as root */
const ROOT_IMAGE = `${tag}-root:v1`;
/** User "app" (1234:2345 in its /etc/passwd) */
const NAMED_IMAGE = `${tag}-named:v1`;
const ns = 'default';
/** Image lookups wait for buildah's storage lock, which a concurrent `buildah bud` can hold for a while. */
const WAIT_MS = 120_000;
jest.setTimeout(3 * WAIT_MS);

let cluster: TestCluster | undefined;
let c: ReturnType<typeof clients>;
const ids: string[] = [];

beforeAll(async () => {
  requireImageTools();
  ids.push(buildTestImage({ name: ROOT_IMAGE, user: '' }), buildTestImage({ name: NAMED_IMAGE, user: 'app' }));
  cluster = await startTestCluster({
    nodes: [{ name: 'node-1' }],
    containerImages: { storageDriver: 'vfs' },
    images: { 'busybox:1.36': {} },
    restartBackoffBaseMs: 200,
  });
  c = clients(cluster.kubeconfigPath);
}, 5 * 60_000);

afterAll(async () => {
  await cluster?.stop();
  for (const id of ids) spawnSync('buildah', [...STORAGE, 'rm', imageRootName(id)], { stdio: 'ignore' });
  spawnSync('buildah', [...STORAGE, 'rmi', ROOT_IMAGE, NAMED_IMAGE], { stdio: 'ignore' });
}, 60_000);

function pod(name: string, ctr: Partial<k8s.V1Container>, spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod {
  return { metadata: { name }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: ROOT_IMAGE, ...ctr }], ...spec } };
}
async function run(body: k8s.V1Pod): Promise<{ pod: k8s.V1Pod; log: string }> {
  await c.core.createNamespacedPod({ namespace: ns, body });
  const name = body.metadata!.name!;
  const done = await until(
    `pod ${name} to finish`,
    async () => {
      const p = await c.core.readNamespacedPod({ namespace: ns, name });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    },
    WAIT_MS,
  );
  return { pod: done, log: await c.core.readNamespacedPodLog({ namespace: ns, name }) };
}
async function waiting(name: string): Promise<{ pod: k8s.V1Pod; state: k8s.V1ContainerStateWaiting }> {
  return until(
    `pod ${name} to wait with CreateContainerConfigError`,
    async () => {
      const p = await c.core.readNamespacedPod({ namespace: ns, name });
      const w = p.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'CreateContainerConfigError' ? { pod: p, state: w } : undefined;
    },
    WAIT_MS,
  );
}
/** The `Cap*` and `NoNewPrivs` lines of /proc/self/status, as a shell prints them. */
const STATUS_SCRIPT = 'grep -E "^(CapEff|CapBnd|NoNewPrivs):" /proc/self/status';

describe('runAsNonRoot', () => {
  test('an image that runs as root is refused with CreateContainerConfigError, as the kubelet words it', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('root-refused', { command: ['id', '-u'] }, { securityContext: { runAsNonRoot: true } }),
    });
    const { pod: p, state } = await waiting('root-refused');
    const msg = `container has runAsNonRoot and image will run as root (pod: "root-refused_default(${p.metadata!.uid!})", container: main)`;
    expect(state.message).toBe(msg);
    const events = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=root-refused,reason=Failed' });
    expect(events.items.map((e) => e.message)).toContain(`Error: ${msg}`);
    expect(p.status?.phase).toBe('Pending');
  });

  test('an image user that is a name cannot be verified; runAsUser gets past both', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('named-refused', { image: NAMED_IMAGE, command: ['id', '-u'], securityContext: { runAsNonRoot: true } }),
    });
    const { pod: p, state } = await waiting('named-refused');
    expect(state.message).toBe(
      `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root (pod: "named-refused_default(${p.metadata!.uid!})", container: main)`,
    );
    const ok = await run(
      pod(
        'as-user',
        { command: ['sh', '-c', 'id -u; id -g'] },
        { securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 3000 } },
      ),
    );
    expect(ok.pod.status?.phase).toBe('Succeeded');
    expect(ok.log).toBe('1000\n3000\n');
  });
});

describe('the process and its file system', () => {
  test('readOnlyRootFilesystem refuses a write to the root; a volume stays writable', async () => {
    const { log } = await run(
      pod(
        'read-only',
        {
          command: ['sh', '-c', 'touch /work/x 2>&1; touch /scratch/x && echo volume writable'],
          securityContext: { readOnlyRootFilesystem: true },
          volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
        },
        { volumes: [{ name: 'scratch', emptyDir: {} }] },
      ),
    );
    expect(log).toBe('touch: /work/x: Read-only file system\nvolume writable\n');
  });

  test('fsGroup makes a 0440 secret readable by a non-root user; emptyDir gets the group and setgid; hostPath is left alone', async () => {
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'creds' }, stringData: { token: 's3cr3t' } } });
    const volumes: k8s.V1Volume[] = [
      { name: 'creds', secret: { secretName: 'creds', defaultMode: 0o440 } },
      { name: 'scratch', emptyDir: {} },
      { name: 'cache', hostPath: { path: '/var/lib/sctest', type: 'DirectoryOrCreate' } },
    ];
    const volumeMounts = [
      { name: 'creds', mountPath: '/creds' },
      { name: 'scratch', mountPath: '/scratch' },
      { name: 'cache', mountPath: '/cache' },
    ];
    const script =
      'id -G; cat /creds/token; echo; stat -c "%g %a" /creds/token /scratch /cache; touch /scratch/new; stat -c "%g" /scratch/new';
    const withGroup = await run(
      pod(
        'fsgroup',
        { command: ['sh', '-c', script], volumeMounts },
        { volumes, securityContext: { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000 } },
      ),
    );
    expect(withGroup.log).toBe('3000 2000\ns3cr3t\n2000 440\n2000 2777\n0 755\n2000\n');
    const without = await run(
      pod(
        'no-fsgroup',
        { command: ['sh', '-c', 'cat /creds/token'], volumeMounts },
        { volumes, securityContext: { runAsUser: 1000, runAsGroup: 3000 } },
      ),
    );
    expect(without.pod.status?.phase).toBe('Failed');
    expect(without.log).toBe("cat: can't open '/creds/token': Permission denied\n");
  });

  test("a root container has the runtime's default capabilities; drop ALL leaves none, add gives one back; no_new_privs", async () => {
    const dflt = await run(pod('caps-default', { command: ['sh', '-c', STATUS_SCRIPT] }));
    expect(dflt.log).toBe('CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t0\n');
    const restricted = await run(
      pod('caps-none', {
        command: ['sh', '-c', STATUS_SCRIPT],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } },
      }),
    );
    expect(restricted.log).toBe('CapEff:\t0000000000000400\nCapBnd:\t0000000000000400\nNoNewPrivs:\t1\n');
    const nonRoot = await run(
      pod('caps-user', { command: ['sh', '-c', STATUS_SCRIPT], securityContext: { runAsUser: 1000, capabilities: { drop: ['ALL'] } } }),
    );
    expect(nonRoot.log).toBe('CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t0\n');
  });

  test('a host process runs as root, as before, unless the pod asks for a user', async () => {
    const host = { image: 'busybox:1.36' };
    const asRoot = await run(pod('host-root', { ...host, command: ['id', '-u'] }));
    expect(asRoot.log).toBe('0\n');
    const asUser = await run(
      pod(
        'host-user',
        { ...host, command: ['sh', '-c', `id -u; id -g; id -G; ${STATUS_SCRIPT}`], securityContext: { allowPrivilegeEscalation: false } },
        {
          securityContext: { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000 },
        },
      ),
    );
    expect(asUser.log).toBe('1000\n3000\n3000 2000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\n');
  });
});
