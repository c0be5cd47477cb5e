/**
 * ResourceQuota and LimitRange as a real cluster enforces them at admission (LimitRange defaults
 * before quota), with the quota's status kept up to date and the Job controller retrying
 * refused pod creates with its back-off; and SelfSubjectRulesReview (`kubectl auth can-i --list`).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, kubectl, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;

async function namespace(name: string): Promise<void> {
  await c.core.createNamespace({ body: { metadata: { name } } });
  await until(`${name}'s default service account`, () => cluster.get('serviceaccounts', name, 'default'));
}
async function quotaUsed(ns: string, name: string, resource: string, value: string): Promise<k8s.V1ResourceQuota> {
  return until(`quota ${name} to show ${resource} used ${value}`, async () => {
    const q = await c.core.readNamespacedResourceQuota({ namespace: ns, name });
    return q.status?.used?.[resource] === value ? q : undefined;
  });
}

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }], jobBackoffBaseMs: 100 });
  c = clients(cluster.kubeconfigPath);
  for (const ns of ['quota', 'cpu', 'limits', 'rules']) await namespace(ns);
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe('ResourceQuota', () => {
  test("a pods: 2 quota holds a Job's third pod back, with FailedCreate events and back-off, until one of its pods ends", async () => {
    await c.core.createNamespacedResourceQuota({
      namespace: 'quota',
      body: { metadata: { name: 'two-pods' }, spec: { hard: { pods: '2' } } },
    });
    await quotaUsed('quota', 'two-pods', 'pods', '0');
    // each pod runs until its file appears in the shared /tmp/quota-test directory
    const dir = `/tmp/quota-test-${process.pid}`;
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    const job = simpleJob('three', ['sh', '-c', `until [ -e ${dir}/$HOSTNAME ]; do sleep 0.1; done`], { parallelism: 3, completions: 3 });
    await c.batch.createNamespacedJob({ namespace: 'quota', body: job });
    const pods = await until('two pods of the Job to run', async () => {
      const l = (await c.core.listNamespacedPod({ namespace: 'quota', labelSelector: 'job-name=three' })).items;
      return l.length === 2 && l.every((p) => p.status?.phase === 'Running') ? l : undefined;
    });
    await quotaUsed('quota', 'two-pods', 'pods', '2');
    const refused = (): Promise<k8s.CoreV1Event[]> =>
      c.core
        .listNamespacedEvent({ namespace: 'quota', fieldSelector: 'involvedObject.name=three,reason=FailedCreate' })
        .then((l) => l.items);
    await until('a refused create', async () => ((await refused()).length ? true : undefined));
    // the back-off: retries after 1 s, 2 s, 4 s, … (and a second after a change to the Job's pods),
    // not at every sync of the controller (every 250 ms here)
    await new Promise((r) => setTimeout(r, 6000));
    const events = await refused();
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events.length).toBeLessThanOrEqual(6);
    for (const e of events)
      expect(e.message).toMatch(
        /^Error creating: pods "three-[a-z0-9]{5}" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2$/,
      );
    expect((await c.core.listNamespacedPod({ namespace: 'quota', labelSelector: 'job-name=three' })).items).toHaveLength(2);
    // one pod ends: its quota is freed and the Job controller creates the third
    await import('node:fs/promises').then((fs) => fs.writeFile(`${dir}/${pods[0]!.metadata!.name!}`, ''));
    const third = await until('the third pod', async () => {
      const l = (await c.core.listNamespacedPod({ namespace: 'quota', labelSelector: 'job-name=three' })).items;
      return l.find((p) => !pods.some((q) => q.metadata!.name === p.metadata!.name));
    });
    for (const p of [pods[1]!, third]) await import('node:fs/promises').then((fs) => fs.writeFile(`${dir}/${p.metadata!.name!}`, ''));
    const done = await jobDone(c.batch, 'quota', 'three', 30_000);
    expect(done.status?.succeeded).toBe(3);
    await quotaUsed('quota', 'two-pods', 'pods', '0');
    const created = await c.core.listNamespacedEvent({
      namespace: 'quota',
      fieldSelector: 'involvedObject.name=three,reason=SuccessfulCreate',
    });
    expect(created.items).toHaveLength(3);
  });

  test('a quota on requests.cpu refuses a pod that requests none, and one that would exceed it; kubectl shows used/hard', async () => {
    const r = await kubectl(cluster.kubeconfigPath, ['create', 'quota', 'cpu', '-n', 'cpu', '--hard=requests.cpu=1,count/jobs.batch=4']);
    expect(r.stdout).toBe('resourcequota/cpu created\n');
    await quotaUsed('cpu', 'cpu', 'requests.cpu', '0');
    await c.batch.createNamespacedJob({ namespace: 'cpu', body: simpleJob('counted', ['true'], { suspend: true }) });
    await quotaUsed('cpu', 'cpu', 'count/jobs.batch', '1');
    const pod = (name: string, cpu?: string): k8s.V1Pod => ({
      metadata: { name },
      spec: {
        containers: [
          { name: 'main', image: 'busybox:1.36', command: ['sleep', '30'], ...(cpu ? { resources: { requests: { cpu } } } : {}) },
        ],
      },
    });
    const none = statusOf(await c.core.createNamespacedPod({ namespace: 'cpu', body: pod('no-request') }).catch((e: unknown) => e));
    expect(none.code).toBe(403);
    expect(none.body.message).toBe('pods "no-request" is forbidden: failed quota: cpu: must specify requests.cpu for: main');
    await c.core.createNamespacedPod({ namespace: 'cpu', body: pod('small', '600m') });
    const big = statusOf(await c.core.createNamespacedPod({ namespace: 'cpu', body: pod('big', '500m') }).catch((e: unknown) => e));
    expect(big.body.message).toBe(
      'pods "big" is forbidden: exceeded quota: cpu, requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1',
    );
    const get = await kubectl(cluster.kubeconfigPath, ['get', 'quota', 'cpu', '-n', 'cpu']);
    expect(get.stdout).toMatch(/^NAME\s+AGE\s+REQUEST\s+LIMIT\ncpu\s+\S+\s+count\/jobs\.batch: 1\/4, requests\.cpu: 600m\/1\s*\n$/);
    const describe = await kubectl(cluster.kubeconfigPath, ['describe', 'quota', 'cpu', '-n', 'cpu']);
    expect(describe.stdout).toBe(
      'Name:             cpu\nNamespace:        cpu\nResource          Used  Hard\n--------          ----  ----\ncount/jobs.batch  1     4\nrequests.cpu      600m  1\n',
    );
    // a dry run is judged but not charged
    await c.core.deleteNamespacedPod({ namespace: 'cpu', name: 'small', gracePeriodSeconds: 0 });
    await quotaUsed('cpu', 'cpu', 'requests.cpu', '0');
    await c.core.createNamespacedPod({ namespace: 'cpu', body: pod('dry', '1'), dryRun: 'All' });
    expect((await c.core.readNamespacedResourceQuota({ namespace: 'cpu', name: 'cpu' })).status?.used?.['requests.cpu']).toBe('0');
  });
});

describe('LimitRange', () => {
  test('container defaults are on the created pod (before quota judges it); min and max are enforced', async () => {
    await c.core.createNamespacedLimitRange({
      namespace: 'limits',
      body: {
        metadata: { name: 'defaults' },
        spec: {
          limits: [
            {
              type: 'Container',
              _default: { cpu: '500m', memory: '256Mi' },
              defaultRequest: { cpu: '100m' },
              max: { cpu: '1' },
              min: { memory: '64Mi' },
            },
          ],
        },
      },
    });
    // the quota requires memory requests, which only the LimitRange's defaults give
    await c.core.createNamespacedResourceQuota({
      namespace: 'limits',
      body: { metadata: { name: 'mem' }, spec: { hard: { 'requests.memory': '1Gi' } } },
    });
    await quotaUsed('limits', 'mem', 'requests.memory', '0');
    const created = await c.core.createNamespacedPod({
      namespace: 'limits',
      body: { metadata: { name: 'defaulted' }, spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } },
    });
    expect(created.spec?.containers[0]?.resources).toEqual({
      limits: { cpu: '500m', memory: '256Mi' },
      requests: { cpu: '100m', memory: '256Mi' },
    });
    expect(created.metadata?.annotations?.['kubernetes.io/limit-ranger']).toBe(
      'LimitRanger plugin set: cpu, memory request for container main; cpu, memory limit for container main',
    );
    expect(created.status?.qosClass).toBe('Burstable');
    await quotaUsed('limits', 'mem', 'requests.memory', '256Mi');
    const lr = await c.core.readNamespacedLimitRange({ namespace: 'limits', name: 'defaults' });
    expect(lr.spec?.limits[0]?.defaultRequest).toEqual({ cpu: '100m', memory: '256Mi' });
    const tooBig = await c.core
      .createNamespacedPod({
        namespace: 'limits',
        body: {
          metadata: { name: 'too-big' },
          spec: { containers: [{ name: 'main', image: 'busybox:1.36', resources: { limits: { cpu: '2', memory: '32Mi' } } }] },
        },
      })
      .catch((e: unknown) => e);
    expect(statusOf(tooBig).body.message).toBe(
      'pods "too-big" is forbidden: [minimum memory usage per Container is 64Mi, but request is 32Mi., maximum cpu usage per Container is 1, but limit is 2.]',
    );
  });
});

describe('SelfSubjectRulesReview', () => {
  test("kubectl auth can-i --list --as a service account prints its Role's rules", async () => {
    await c.core.createNamespacedServiceAccount({ namespace: 'rules', body: { metadata: { name: 'toil-leader' } } });
    await c.rbac.createNamespacedRole({
      namespace: 'rules',
      body: {
        metadata: { name: 'toil-leader' },
        rules: [
          { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'delete', 'get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: ['s3-credentials'], verbs: ['get'] },
        ],
      },
    });
    await c.rbac.createNamespacedRoleBinding({
      namespace: 'rules',
      body: {
        metadata: { name: 'toil-leader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'toil-leader' },
        subjects: [{ kind: 'ServiceAccount', name: 'toil-leader', namespace: 'rules' }],
      },
    });
    const r = await kubectl(cluster.kubeconfigPath, [
      'auth',
      'can-i',
      '--list',
      '-n',
      'rules',
      '--as=system:serviceaccount:rules:toil-leader',
    ]);
    expect(r.stderr).toBe('');
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/));
    expect(rows[0]).toEqual(['Resources', 'Non-Resource URLs', 'Resource Names', 'Verbs']);
    expect(rows).toContainEqual(['jobs.batch', '[]', '[]', '[create delete get list watch]']);
    expect(rows).toContainEqual(['pods', '[]', '[]', '[get list watch]']);
    expect(rows).toContainEqual(['pods/log', '[]', '[]', '[get list watch]']);
    expect(rows).toContainEqual(['secrets', '[]', '[s3-credentials]', '[get]']);
    expect(rows).toContainEqual(['selfsubjectrulesreviews.authorization.k8s.io', '[]', '[]', '[create]']);
    expect(rows).toContainEqual(['[/version]', '[]', '[get]']);
    // another namespace: only what every authenticated user may do
    const other = await kubectl(cluster.kubeconfigPath, [
      'auth',
      'can-i',
      '--list',
      '-n',
      'quota',
      '--as=system:serviceaccount:rules:toil-leader',
    ]);
    expect(other.stdout).not.toContain('jobs.batch');
    // the same answer for the account's own token, and for the admin everything
    const token = cluster.createToken('rules', 'toil-leader');
    const own = await kubectl(cluster.kubeconfigPath, ['auth', 'can-i', '--list', '-n', 'rules', `--token=${token}`]);
    expect(own.stdout).toBe(r.stdout);
    const admin = await kubectl(cluster.kubeconfigPath, ['auth', 'can-i', '--list', '-n', 'rules']);
    expect(admin.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/))).toContainEqual(['*.*', '[]', '[]', '[*]']);
  });
});
