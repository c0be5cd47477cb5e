/**
 * Scheduler and kubelet: volumes (hostPath per node, secret, emptyDir, projected token), env
 * (fieldRef, secretKeyRef), working dir, logs (tailLines, previous, follow), scheduling rules,
 * and a pod using in-cluster config under RBAC.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, kubectl, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';
const here = dirname(fileURLToPath(import.meta.url));
/** Private scratch directories for containers; never the one this checkout (and node) lives in. */
const privateScratch = ['/tmp', '/var/tmp'].filter((d) => !here.startsWith(`${d}/`) && !process.execPath.startsWith(`${d}/`));
const scratch = privateScratch[0] ?? '/tmp';

beforeAll(async () => {
  cluster = await startTestCluster({
    jobBackoffBaseMs: 100,
    restartBackoffBaseMs: 200,
    privateDirs: ['/root', ...privateScratch],
    nodes: [
      { name: 'node-1' },
      { name: 'node-2' },
      {
        name: 'gpu-1',
        gpu: 2,
        labels: { 'node.kubernetes.io/instance-type': 'p3.2xlarge', 'eks.amazonaws.com/capacityType': 'SPOT' },
        taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
      },
    ],
  });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
  expect(cluster.runningPids()).toEqual([]);
});

async function logOf(name: string, opts: { previous?: boolean; tailLines?: number } = {}): Promise<string> {
  return c.core.readNamespacedPodLog({ namespace: ns, name, ...opts });
}
async function podDone(name: string): Promise<k8s.V1Pod> {
  return until(`pod ${name} done`, async () => {
    const p = await c.core.readNamespacedPod({ namespace: ns, name });
    return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
  });
}
function pod(
  name: string,
  node: string | undefined,
  command: string[],
  extra: Partial<k8s.V1PodSpec> = {},
  ctr: Partial<k8s.V1Container> = {},
): k8s.V1Pod {
  return {
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      ...(node ? { nodeSelector: { 'kubernetes.io/hostname': node } } : {}),
      containers: [{ name: 'main', image: 'busybox:1.36', command, ...ctr }],
      ...extra,
    },
  };
}

describe('volumes and environment', () => {
  test('a Job writing to a hostPath and reading a mounted secret completes; env has fieldRefs and secretKeyRef', async () => {
    await c.core.createNamespacedSecret({
      namespace: ns,
      body: {
        metadata: { name: 's3-credentials' },
        stringData: { credentials: '[default]\naws_access_key_id = AKIA\n', region: 'us-west-2' },
      },
    });
    const job = simpleJob('writer', [
      'sh',
      '-c',
      [
        'cat /root/.aws/credentials > /var/lib/toil/creds-copy',
        'echo "$POD_NAME $POD_NS $POD_UID $NODE $REGION" > /var/lib/toil/env.txt',
        'pwd >> /var/lib/toil/env.txt',
        'touch /root/.aws/x 2>/dev/null && echo writable || echo read-only',
      ].join('; '),
    ]);
    const spec = job.spec!.template.spec!;
    spec.nodeSelector = { 'kubernetes.io/hostname': 'node-1' };
    spec.volumes = [
      { name: 'cache', hostPath: { path: '/var/lib/toil', type: 'DirectoryOrCreate' } },
      { name: 'aws', secret: { secretName: 's3-credentials' } },
    ];
    const ctr = spec.containers[0]!;
    ctr.workingDir = '/tmp/work';
    ctr.volumeMounts = [
      { name: 'cache', mountPath: '/var/lib/toil' },
      { name: 'aws', mountPath: '/root/.aws', readOnly: true },
    ];
    ctr.env = [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'REGION', valueFrom: { secretKeyRef: { name: 's3-credentials', key: 'region' } } },
    ];
    await c.batch.createNamespacedJob({ namespace: ns, body: job });
    const j = await jobDone(c.batch, ns, 'writer');
    expect(j.status?.succeeded).toBe(1);
    const p = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=writer' })).items[0]!;
    expect((await logOf(p.metadata!.name!)).trim()).toBe('read-only');
    const dir = cluster.hostPathDir('node-1', '/var/lib/toil');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(join(dir, 'creds-copy'), 'utf8')).toBe('[default]\naws_access_key_id = AKIA\n');
    expect(readFileSync(join(dir, 'env.txt'), 'utf8')).toBe(
      `${p.metadata!.name!} default ${p.metadata!.uid!} node-1 us-west-2\n/tmp/work\n`,
    );
  });

  test('$(VAR) in command and args expands from the container env; $$ is a literal $, unknown names stay', async () => {
    const ctr = {
      args: ['$(GREETING), $(WHO)', '$$(WHO)', '$(NOBODY)'],
      env: [
        { name: 'WHO', value: 'world' },
        { name: 'GREETING', value: 'Hello' },
      ],
    };
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('expand', undefined, ['sh', '-c', 'printf "%s|" "$@"', '$(WHO)'], {}, ctr),
    });
    await podDone('expand');
    expect((await logOf('expand')).trimEnd()).toBe('Hello, world|$(WHO)|$(NOBODY)|');
  });

  test('two pods on one node share its hostPath; a pod on another node does not see it', async () => {
    const vol = { volumes: [{ name: 'cache', hostPath: { path: '/var/lib/shared', type: 'DirectoryOrCreate' } }] };
    const mount = { volumeMounts: [{ name: 'cache', mountPath: '/var/lib/toil' }] };
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('hp-a', 'node-2', ['sh', '-c', 'echo from-a > /var/lib/toil/a.txt'], vol, mount),
    });
    await podDone('hp-a');
    await c.core.createNamespacedPod({ namespace: ns, body: pod('hp-b', 'node-2', ['sh', '-c', 'cat /var/lib/toil/a.txt'], vol, mount) });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('hp-c', 'node-1', ['sh', '-c', 'cat /var/lib/toil/a.txt || echo missing'], vol, mount),
    });
    expect((await podDone('hp-b')).spec?.nodeName).toBe('node-2');
    expect((await podDone('hp-c')).spec?.nodeName).toBe('node-1');
    expect(await logOf('hp-b')).toBe('from-a\n');
    expect(await logOf('hp-c')).toMatch(/missing\n$/);
    // the host itself is untouched: the pod path is only a mount inside the pod's namespace
    expect(existsSync('/var/lib/toil/a.txt')).toBe(false);
  });

  test("with privateDirs, each container has its own empty scratch directory and /root, not the host's", async () => {
    const marker = `${scratch}/host-only-${process.pid}`;
    writeFileSync(marker, 'x');
    try {
      await c.core.createNamespacedPod({
        namespace: ns,
        body: pod('private', undefined, [
          'sh',
          '-c',
          `ls -A ${scratch} /root | tr '\\n' ' '; test -e ${marker} && echo shared || echo private; echo scratch > ${scratch}/mine`,
        ]),
      });
      await podDone('private');
      expect(await logOf('private')).toBe(`/root:  ${scratch}: private\n`);
      expect(existsSync(`${scratch}/mine`)).toBe(false);
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(marker, { force: true });
    }
  });

  test('hostPath type Directory fails to mount when missing (FailedMount), DirectoryOrCreate creates it', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'hp-dir',
        'node-1',
        ['true'],
        { volumes: [{ name: 'd', hostPath: { path: '/data/missing', type: 'Directory' } }] },
        { volumeMounts: [{ name: 'd', mountPath: '/data' }] },
      ),
    });
    const ev = await until(
      'FailedMount event',
      async () =>
        (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=hp-dir,reason=FailedMount' })).items[0],
    );
    expect(ev.message).toBe('MountVolume.SetUp failed for volume "d" : hostPath type check failed: /data/missing is not a directory');
    const p = await c.core.readNamespacedPod({ namespace: ns, name: 'hp-dir' });
    expect(p.status?.phase).toBe('Pending');
    expect(p.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('ContainerCreating');
    mkdirSync(cluster.hostPathDir('node-1', '/data/missing'), { recursive: true });
    writeFileSync(join(cluster.hostPathDir('node-1', '/data/missing'), 'f'), 'x');
    expect((await podDone('hp-dir')).status?.phase).toBe('Succeeded');
  });

  test('emptyDir is per pod and survives container restarts; previous logs and tailLines work', async () => {
    const script = 'if [ -f /scratch/once ]; then seq 1 10; else touch /scratch/once; echo first-run; exit 1; fi';
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'restarts',
        undefined,
        ['sh', '-c', script],
        { restartPolicy: 'OnFailure', volumes: [{ name: 's', emptyDir: {} }] },
        { volumeMounts: [{ name: 's', mountPath: '/scratch' }] },
      ),
    });
    const p = await podDone('restarts');
    expect(p.status?.phase).toBe('Succeeded');
    const cs = p.status!.containerStatuses![0]!;
    expect(cs.restartCount).toBe(1);
    expect(cs.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(await logOf('restarts', { previous: true })).toBe('first-run\n');
    expect(await logOf('restarts', { tailLines: 3 })).toBe('8\n9\n10\n');
  });

  test('init containers run first, in order, sharing volumes with the main container', async () => {
    const vol = {
      volumes: [{ name: 'w', emptyDir: {} }],
      initContainers: [
        { name: 'one', image: 'busybox', command: ['sh', '-c', 'echo one > /w/log'], volumeMounts: [{ name: 'w', mountPath: '/w' }] },
        { name: 'two', image: 'busybox', command: ['sh', '-c', 'echo two >> /w/log'], volumeMounts: [{ name: 'w', mountPath: '/w' }] },
      ],
    };
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('inits', undefined, ['cat', '/w/log'], vol, { volumeMounts: [{ name: 'w', mountPath: '/w' }] }),
    });
    const p = await podDone('inits');
    expect(p.status?.phase).toBe('Succeeded');
    expect(p.status?.initContainerStatuses?.map((x) => x.state?.terminated?.reason)).toEqual(['Completed', 'Completed']);
    expect(await logOf('inits')).toBe('one\ntwo\n');
  });

  test('logs: timestamps, limitBytes, sinceSeconds, and the errors a real kubelet gives', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('logopts', undefined, ['sh', '-c', 'echo alpha; echo beta']) });
    await podDone('logopts');
    const ts = await c.core.readNamespacedPodLog({ namespace: ns, name: 'logopts', timestamps: true });
    expect(ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z alpha\n\S+ beta\n$/);
    expect(await c.core.readNamespacedPodLog({ namespace: ns, name: 'logopts', limitBytes: 3 })).toBe('alp');
    expect(await c.core.readNamespacedPodLog({ namespace: ns, name: 'logopts', sinceSeconds: 3600 })).toBe('alpha\nbeta\n');
    const prev = await c.core.readNamespacedPodLog({ namespace: ns, name: 'logopts', previous: true }).catch((e: unknown) => e);
    expect(statusOf(prev).body).toMatchObject({ code: 400, message: 'previous terminated container "main" in pod "logopts" not found' });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('unscheduled-logs', 'no-such-node', ['true']) });
    expect(await c.core.readNamespacedPodLog({ namespace: ns, name: 'unscheduled-logs' })).toBe('');
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'pending-logs',
        'node-1',
        ['true'],
        { volumes: [{ name: 'd', hostPath: { path: '/nope', type: 'Directory' } }] },
        { volumeMounts: [{ name: 'd', mountPath: '/d' }] },
      ),
    });
    await until(
      'scheduled',
      async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'pending-logs' })).status?.containerStatuses?.[0],
    );
    const waiting = await c.core.readNamespacedPodLog({ namespace: ns, name: 'pending-logs' }).catch((e: unknown) => e);
    expect(statusOf(waiting).body).toMatchObject({
      code: 400,
      message: 'container "main" in pod "pending-logs" is waiting to start: ContainerCreating',
    });
    for (const n of ['pending-logs', 'unscheduled-logs']) await c.core.deleteNamespacedPod({ namespace: ns, name: n });
  });

  test('logs follow streams until the container exits', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('follow', undefined, ['sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.3; done']),
    });
    await until('running', async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'follow' })).status?.phase === 'Running');
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const ended = new Promise<void>((r) => out.on('end', () => r()));
    await new k8s.Log(c.kc).log(ns, 'follow', 'main', out, { follow: true });
    await ended;
    expect(text).toBe('line 1\nline 2\nline 3\n');
  });

  test('a command that does not exist is a StartError, as containerd reports it', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('noexec', undefined, ['no-such-binary']) });
    const p = await podDone('noexec');
    expect(p.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 128, reason: 'StartError' });
    expect(p.status?.containerStatuses?.[0]?.state?.terminated?.message).toContain(
      'exec: "no-such-binary": executable file not found in $PATH',
    );
  });
});

describe('scheduler', () => {
  test('a pod that fits nowhere stays Pending with PodScheduled=False/Unschedulable and a FailedScheduling event', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod('too-big', undefined, ['true'], {}, { resources: { requests: { cpu: '64', memory: '1Gi' } } }),
    });
    const p = await until('unschedulable', async () => {
      const x = await c.core.readNamespacedPod({ namespace: ns, name: 'too-big' });
      return x.status?.conditions?.find((cd) => cd.type === 'PodScheduled' && cd.status === 'False') ? x : undefined;
    });
    const cond = p.status!.conditions!.find((cd) => cd.type === 'PodScheduled')!;
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toBe(
      '0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 3 Insufficient cpu. preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.',
    );
    expect(p.status?.phase).toBe('Pending');
    const ev = (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=too-big' })).items;
    expect(ev.map((e) => [e.type, e.reason, e.source?.component])).toContainEqual(['Warning', 'FailedScheduling', 'default-scheduler']);
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'too-big' });
  });

  test('tolerations, node affinity and extended resources (GPUs) are honoured', async () => {
    const gpu = { resources: { limits: { 'nvidia.com/gpu': '1' } } };
    const affinity: k8s.V1Affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: 'eks.amazonaws.com/capacityType', operator: 'In', values: ['SPOT'] }] }],
        },
      },
    };
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'gpu-ok',
        undefined,
        ['true'],
        { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], affinity },
        gpu,
      ),
    });
    await c.core.createNamespacedPod({ namespace: ns, body: pod('gpu-no-tol', undefined, ['true'], {}, gpu) });
    expect((await podDone('gpu-ok')).spec?.nodeName).toBe('gpu-1');
    const p = await until('gpu-no-tol unschedulable', async () => {
      const x = await c.core.readNamespacedPod({ namespace: ns, name: 'gpu-no-tol' });
      return x.status?.conditions?.find((cd) => cd.type === 'PodScheduled' && cd.reason === 'Unschedulable');
    });
    expect(p.message).toBe(
      '0/3 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, 2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.',
    );
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'gpu-no-tol' });
  });
});

describe('in-cluster config and RBAC', () => {
  test('a pod uses in-cluster config (TLS, service-account token) to create a Job and is refused what its Role does not grant', async () => {
    const manifest = `
apiVersion: v1
kind: ServiceAccount
metadata: {name: leader}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leader}
rules:
- apiGroups: [batch]
  resources: [jobs]
  verbs: [create, get, list, watch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leader}
subjects:
- {kind: ServiceAccount, name: leader}
`;
    const r = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], manifest);
    expect(r.stderr).toBe('');
    const job = simpleJob('leader', [process.execPath, join(here, 'fixtures/incluster.mjs')]);
    job.spec!.template.spec!.serviceAccountName = 'leader';
    await c.batch.createNamespacedJob({ namespace: ns, body: job });
    const j = await jobDone(c.batch, ns, 'leader', 30_000);
    const p = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=leader' })).items[0]!;
    const log = await logOf(p.metadata!.name!);
    expect(log).toBe(
      [
        `server https://127.0.0.1:${cluster.port}`,
        `created child-of-${p.metadata!.name!}`,
        'secrets: 403 Forbidden secrets is forbidden: User "system:serviceaccount:default:leader" cannot list resource "secrets" in API group "" in the namespace "default"',
        '',
      ].join('\n'),
    );
    expect(j.status?.succeeded).toBe(1);
    await jobDone(c.batch, ns, `child-of-${p.metadata!.name!}`);
  });

  test('tokens: kubectl with a service-account kubeconfig is authorised by RBAC; a bad token is 401', async () => {
    const kc = cluster.kubeconfigFor(ns, 'leader');
    expect((await kubectl(kc, ['auth', 'can-i', 'create', 'jobs'])).stdout.trim()).toBe('yes');
    expect((await kubectl(kc, ['auth', 'can-i', 'delete', 'pods'])).stdout.trim()).toBe('no');
    const denied = await kubectl(kc, ['get', 'pods']);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain(
      'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:default:leader" cannot list resource "pods" in API group "" in the namespace "default"',
    );
    const good = cluster.createToken(ns, 'leader');
    const bad = await kubectl(cluster.kubeconfigPath, ['--token', `${good.slice(0, -4)}AAAA`, 'get', 'jobs']);
    expect(bad.stderr).toContain('error: You must be logged in to the server (Unauthorized)');
  });
});
