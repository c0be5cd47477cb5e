/**
 * Pod Security admission as a real cluster has it: namespace labels choose the levels; a pod
 * that violates the enforce level is refused with the real 403, a Job's pod is refused when the
 * Job controller creates it (FailedCreate events, no pod, no condition), the warn level comes back
 * as a Warning header that kubectl prints, and bad labels are refused.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, kubectl, raw, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }], mountNamespaces: false, jobBackoffBaseMs: 100 });
  c = clients(cluster.kubeconfigPath);
  const label = (level: string): Record<string, string> => ({ 'pod-security.kubernetes.io/enforce': level });
  await c.core.createNamespace({ body: { metadata: { name: 'base', labels: label('baseline') } } });
  await c.core.createNamespace({ body: { metadata: { name: 'strict', labels: label('restricted') } } });
  await c.core.createNamespace({
    body: { metadata: { name: 'warned', labels: { ...label('baseline'), 'pod-security.kubernetes.io/warn': 'restricted' } } },
  });
  for (const ns of ['base', 'strict', 'warned'])
    await until(`${ns}'s default service account`, () => cluster.get('serviceaccounts', ns, 'default'));
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

const hostPathPod = (name: string): k8s.V1Pod => ({
  metadata: { name },
  spec: {
    restartPolicy: 'Never',
    volumes: [{ name: 'cache', hostPath: { path: '/var/lib/toil', type: 'DirectoryOrCreate' } }],
    containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'], volumeMounts: [{ name: 'cache', mountPath: '/var/lib/toil' }] }],
  },
});

const RESTRICTED_CONTEXT: k8s.V1SecurityContext = {
  runAsNonRoot: true,
  runAsUser: 1000,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

describe('the enforce level', () => {
  test('a baseline namespace refuses a hostPath pod with the real 403', async () => {
    const e = await c.core.createNamespacedPod({ namespace: 'base', body: hostPathPod('cache-user') }).catch((x: unknown) => x);
    const { code, body } = statusOf(e);
    expect(code).toBe(403);
    expect(body.reason).toBe('Forbidden');
    expect(body.message).toBe('pods "cache-user" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "cache")');
    expect(cluster.get('pods', 'base', 'cache-user')).toBeUndefined();
    // baseline allows what restricted would not
    await c.core.createNamespacedPod({
      namespace: 'base',
      body: { metadata: { name: 'plain' }, spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } },
    });
  });

  test("a Job's hostPath pod is refused when the Job controller creates it: FailedCreate events, no pod, no condition", async () => {
    const job = simpleJob('cache-job', ['true']);
    job.spec!.template.spec!.volumes = [{ name: 'cache', hostPath: { path: '/var/lib/toil', type: 'DirectoryOrCreate' } }];
    job.spec!.template.spec!.containers[0]!.volumeMounts = [{ name: 'cache', mountPath: '/var/lib/toil' }];
    const created = await raw(c.kc, 'POST', '/apis/batch/v1/namespaces/base/jobs', job);
    expect(created.code).toBe(201);
    // the Job itself is admitted; its template only draws the warning (warn follows enforce)
    expect(created.headers.warning).toBe('299 - "would violate PodSecurity \\"baseline:latest\\": hostPath volumes (volume \\"cache\\")"');
    const failed = await until(
      'two FailedCreate events on the Job',
      async () => {
        const evs = (
          await c.core.listNamespacedEvent({ namespace: 'base', fieldSelector: 'involvedObject.name=cache-job,reason=FailedCreate' })
        ).items;
        return evs.length >= 2 ? evs : undefined;
      },
      15_000,
    );
    for (const e of failed) {
      expect(e.type).toBe('Warning');
      expect(e.source?.component).toBe('job-controller');
      expect(e.message).toMatch(
        /^Error creating: pods "cache-job-[a-z0-9]{5}" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes \(volume "cache"\)$/,
      );
    }
    const j = await c.batch.readNamespacedJob({ namespace: 'base', name: 'cache-job' });
    expect(j.status?.conditions ?? []).toEqual([]);
    expect(j.status?.active).toBeUndefined();
    expect((await c.core.listNamespacedPod({ namespace: 'base', labelSelector: 'job-name=cache-job' })).items).toEqual([]);
  });

  test('restricted refuses a root pod and admits one with the full restricted securityContext', async () => {
    const root: k8s.V1Pod = {
      metadata: { name: 'root' },
      spec: {
        securityContext: { runAsUser: 0 },
        containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }],
      },
    };
    const { code, body } = statusOf(await c.core.createNamespacedPod({ namespace: 'strict', body: root }).catch((x: unknown) => x));
    expect(code).toBe(403);
    expect(body.message).toBe(
      'pods "root" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "main" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), runAsUser=0 (pod must not set runAsUser=0), seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    const ok = await raw(c.kc, 'POST', '/api/v1/namespaces/strict/pods', {
      metadata: { name: 'nonroot' },
      spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'], securityContext: RESTRICTED_CONTEXT }] },
    });
    expect(ok.code).toBe(201);
    expect(ok.headers.warning).toBeUndefined();
  });

  test('restricted names each rule a container breaks, and its volume types', async () => {
    const body: k8s.V1Pod = {
      metadata: { name: 'mixed' },
      spec: {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        volumes: [{ name: 'cache', hostPath: { path: '/tmp' } }],
        initContainers: [
          {
            name: 'init',
            image: 'busybox:1.36',
            securityContext: { ...RESTRICTED_CONTEXT, capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } },
          },
        ],
        containers: [
          { name: 'main', image: 'busybox:1.36', securityContext: { ...RESTRICTED_CONTEXT, privileged: true } },
          { name: 'side', image: 'busybox:1.36', securityContext: { ...RESTRICTED_CONTEXT, seccompProfile: { type: 'Unconfined' } } },
        ],
      },
    };
    const { body: status } = statusOf(await c.core.createNamespacedPod({ namespace: 'strict', body }).catch((x: unknown) => x));
    expect(status.message).toBe(
      'pods "mixed" is forbidden: violates PodSecurity "restricted:latest": privileged (container "main" must not set securityContext.privileged=true), unrestricted capabilities (container "init" must not include "SYS_ADMIN" in securityContext.capabilities.add), restricted volume types (volume "cache" uses restricted volume type "hostPath"), seccompProfile (container "side" must not set securityContext.seccompProfile.type to "Unconfined")',
    );
  });
});

describe('the warn level and the labels', () => {
  test('a pod that passes enforce but not warn is admitted with a Warning that kubectl prints', async () => {
    const r = await kubectl(cluster.kubeconfigPath, [
      'run',
      'warned-pod',
      '-n',
      'warned',
      '--image=busybox:1.36',
      '--restart=Never',
      '--',
      'true',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('pod/warned-pod created\n');
    expect(r.stderr).toBe(
      'Warning: would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "warned-pod" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "warned-pod" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "warned-pod" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "warned-pod" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")\n',
    );
  });

  test('a namespace label that is not a level or version is refused (422)', async () => {
    const r = await kubectl(cluster.kubeconfigPath, [
      'label',
      'namespace',
      'warned',
      'pod-security.kubernetes.io/audit=strictest',
      'pod-security.kubernetes.io/audit-version=1.30',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'The Namespace "warned" is invalid: \n' +
        '* metadata.labels[pod-security.kubernetes.io/audit]: Invalid value: "strictest": must be one of privileged, baseline, restricted\n' +
        '* metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: "1.30": must be "latest" or "v1.x"\n',
    );
  });

  test('tightening enforce warns about the pods already there that break it', async () => {
    const r = await kubectl(cluster.kubeconfigPath, [
      'label',
      '--overwrite',
      'namespace',
      'warned',
      'pod-security.kubernetes.io/enforce=restricted',
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'Warning: existing pods in namespace "warned" violate the new PodSecurity enforce level "restricted:latest"\nWarning: warned-pod: allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile\n',
    );
  });

  test('a namespace without labels (the default one) admits anything, with no warning', async () => {
    const ok = await raw(c.kc, 'POST', '/api/v1/namespaces/default/pods', { ...hostPathPod('anything'), metadata: { name: 'anything' } });
    expect(ok.code).toBe(201);
    expect(ok.headers.warning).toBeUndefined();
  });
});
