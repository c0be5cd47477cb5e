/**
 * The REST API as @kubernetes/client-node sees it: CRUD, selectors, generateName, resource
 * versions, watches (with 410 and re-list), validation and error shapes, patches, GC.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, raw, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';

beforeAll(async () => {
  // bookmarks every second (a real server: every minute) for the watch test that waits for one
  cluster = await startTestCluster({ jobBackoffBaseMs: 100, restartBackoffBaseMs: 100, bookmarkIntervalMs: 1000 });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
});

describe('objects and errors', () => {
  test('create, get, list with label and field selectors, generateName, uid/resourceVersion', async () => {
    const a = await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'cm-a', labels: { tier: 'x', n: '1' } }, data: { k: 'v' } },
    });
    const b = await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { generateName: 'cm-gen-', labels: { tier: 'y' } }, data: {} },
    });
    expect(a.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(a.metadata?.resourceVersion)).toBeGreaterThan(0);
    expect(b.metadata?.name).toMatch(/^cm-gen-[a-z0-9]{5}$/);
    const byLabel = await c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'tier in (x,z),n' });
    expect(byLabel.items.map((i) => i.metadata?.name)).toEqual(['cm-a']);
    const notX = await c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'tier!=x,tier' });
    expect(notX.items.map((i) => i.metadata?.name)).toEqual([b.metadata?.name]);
    const byField = await c.core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'metadata.name=cm-a' });
    expect(byField.items).toHaveLength(1);
    expect(Number(byField.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(b.metadata?.resourceVersion));
    const bad = await c.core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'data.k=v' }).catch((e: unknown) => e);
    expect(statusOf(bad)).toMatchObject({
      code: 400,
      body: {
        kind: 'Status',
        reason: 'BadRequest',
        message: '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"',
      },
    });
  });

  test("404, 409 AlreadyExists and 409 Conflict have a real server's Status bodies", async () => {
    const nf = await c.batch.readNamespacedJob({ namespace: ns, name: 'nope' }).catch((e: unknown) => e);
    expect(statusOf(nf)).toEqual({
      code: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'jobs.batch "nope" not found',
        reason: 'NotFound',
        details: { name: 'nope', group: 'batch', kind: 'jobs' },
        code: 404,
      },
    });
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's1' }, stringData: { a: 'b' } } });
    const dup = await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's1' } } }).catch((e: unknown) => e);
    expect(statusOf(dup).body).toMatchObject({
      code: 409,
      reason: 'AlreadyExists',
      message: 'secrets "s1" already exists',
      details: { name: 's1', kind: 'secrets' },
    });
    const s = await c.core.readNamespacedSecret({ namespace: ns, name: 's1' });
    expect(s.data).toEqual({ a: Buffer.from('b').toString('base64') });
    expect(s.type).toBe('Opaque');
    const stale = { ...s, metadata: { ...s.metadata, resourceVersion: '1' } };
    const conflict = await c.core.replaceNamespacedSecret({ namespace: ns, name: 's1', body: stale }).catch((e: unknown) => e);
    expect(statusOf(conflict).body).toMatchObject({
      code: 409,
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on secrets "s1": the object has been modified; please apply your changes to the latest version and try again',
    });
    const missingNs = await c.core
      .createNamespacedConfigMap({ namespace: 'nowhere', body: { metadata: { name: 'x' } } })
      .catch((e: unknown) => e);
    expect(statusOf(missingNs).body).toMatchObject({ code: 404, reason: 'NotFound', message: 'namespaces "nowhere" not found' });
  });

  test('fieldValidation=Strict rejects unknown fields (400); default Warn drops them with a warning', async () => {
    // client-node's serializer drops unknown fields before sending, so send raw JSON
    const body = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'strict-job' },
      spec: {
        bogus: 1,
        template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'i', command: ['true'], imagee: 'x' }] } },
      },
    };
    const e = await raw(c.kc, 'POST', `/apis/batch/v1/namespaces/${ns}/jobs?fieldValidation=Strict`, body);
    expect({ code: e.code, body: e.body }).toEqual({
      code: 400,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'Job in version "v1" cannot be handled as a Job: strict decoding error: unknown field "spec.bogus", unknown field "spec.template.spec.containers[0].imagee"',
        reason: 'BadRequest',
        code: 400,
      },
    });
    const ok = await raw(c.kc, 'POST', `/apis/batch/v1/namespaces/${ns}/jobs?dryRun=All`, body);
    expect(ok.code).toBe(201);
    expect(ok.headers.warning).toBe(
      '299 - "unknown field \\"spec.bogus\\"", 299 - "unknown field \\"spec.template.spec.containers[0].imagee\\""',
    );
    expect(ok.body).toHaveProperty('spec.template');
    expect(ok.body).not.toHaveProperty('spec.bogus');
    expect(await c.batch.readNamespacedJob({ namespace: ns, name: 'strict-job' }).catch((x: unknown) => statusOf(x).code)).toBe(404);
  });

  test('wrong types are decoding errors (400), missing required fields and enums are 422 Invalid with causes', async () => {
    const wrong = {
      metadata: { name: 'wt' },
      spec: { backoffLimit: 'three', template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'i' }] } } },
    } as unknown as k8s.V1Job;
    const e1 = await c.batch.createNamespacedJob({ namespace: ns, body: wrong }).catch((x: unknown) => x);
    expect(statusOf(e1).body).toMatchObject({
      code: 400,
      reason: 'BadRequest',
      message:
        'Job in version "v1" cannot be handled as a Job: json: cannot unmarshal string into Go struct field JobSpec.spec.backoffLimit of type int32',
    });
    const missing = { metadata: { name: 'mr' }, spec: { template: { spec: { containers: [{ name: 'm' }] } } } } as unknown as k8s.V1Job;
    const e2 = await c.batch.createNamespacedJob({ namespace: ns, body: missing }).catch((x: unknown) => x);
    const s2 = statusOf(e2);
    expect(s2.code).toBe(422);
    expect(s2.body.reason).toBe('Invalid');
    expect(s2.body.message).toBe(
      'Job.batch "mr" is invalid: [spec.template.spec.containers[0].image: Required value, spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"]',
    );
    expect(s2.body.details).toEqual({
      name: 'mr',
      group: 'batch',
      kind: 'Job',
      causes: [
        { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers[0].image' },
        {
          reason: 'FieldValueNotSupported',
          message: 'Unsupported value: "Always": supported values: "OnFailure", "Never"',
          field: 'spec.template.spec.restartPolicy',
        },
      ],
    });
    const noContainers = { metadata: { name: 'nc' }, spec: {} } as unknown as k8s.V1Pod;
    const e3 = await c.core.createNamespacedPod({ namespace: ns, body: noContainers }).catch((x: unknown) => x);
    expect(statusOf(e3).body).toMatchObject({ code: 422, message: 'Pod "nc" is invalid: spec.containers: Required value' });
    const badEnum = {
      metadata: { name: 'be' },
      spec: { containers: [{ name: 'm', image: 'i', imagePullPolicy: 'Sometimes' }] },
    } as unknown as k8s.V1Pod;
    const e4 = await c.core.createNamespacedPod({ namespace: ns, body: badEnum }).catch((x: unknown) => x);
    expect(statusOf(e4).body.message).toBe(
      'Pod "be" is invalid: spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
    );
    const badName = await c.core
      .createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'Bad_Name' } } })
      .catch((x: unknown) => x);
    expect(statusOf(badName).body.message).toMatch(
      /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of/,
    );
    const noTemplate = await raw(c.kc, 'POST', `/apis/batch/v1/namespaces/${ns}/jobs`, {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'nt' },
      spec: {},
    });
    expect(noTemplate.body.message).toBe(
      'Job.batch "nt" is invalid: [spec.template.spec.containers: Required value, spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"]',
    );
    const noRef = await raw(c.kc, 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'nr' },
    });
    expect(noRef.body.message).toBe(
      'RoleBinding.rbac.authorization.k8s.io "nr" is invalid: [roleRef.apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io", roleRef.kind: Unsupported value: "": supported values: "ClusterRole", "Role", roleRef.name: Required value]',
    );
    const gpuReqOnly = {
      metadata: { name: 'g' },
      spec: { containers: [{ name: 'm', image: 'i', resources: { requests: { 'nvidia.com/gpu': '1', cpu: '2' }, limits: { cpu: '1' } } }] },
    } as unknown as k8s.V1Pod;
    const e6 = await c.core.createNamespacedPod({ namespace: ns, body: gpuReqOnly }).catch((x: unknown) => x);
    expect(statusOf(e6).body.message).toBe(
      'Pod "g" is invalid: [spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources, spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu limit of 1]',
    );
    const longJob = simpleJob('j'.repeat(64), ['true']);
    const e5 = await c.batch.createNamespacedJob({ namespace: ns, body: longJob }).catch((x: unknown) => x);
    expect(statusOf(e5).body.message).toContain(
      `spec.template.labels: Invalid value: "${'j'.repeat(64)}": must be no more than 63 characters`,
    );
  });

  test('quantities are stored in canonical form', async () => {
    const p = await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'quant' },
        spec: {
          nodeName: 'nowhere',
          containers: [
            {
              name: 'm',
              image: 'i',
              resources: { limits: { cpu: '0.5', memory: '1024Mi' }, requests: { cpu: '250m', 'ephemeral-storage': '1000' } },
            },
          ],
        },
      },
    });
    expect(p.spec?.containers[0]?.resources).toEqual({
      limits: { cpu: '500m', memory: '1Gi' },
      requests: { cpu: '250m', memory: '1Gi', 'ephemeral-storage': '1k' },
    });
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'quant', gracePeriodSeconds: 0 });
  });

  test('merge, strategic-merge and JSON patches; status subresource is separate', async () => {
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'p1', labels: { a: '1' } }, data: { x: '1' } } });
    await c.core.patchNamespacedConfigMap(
      { namespace: ns, name: 'p1', body: { metadata: { labels: { b: '2' } }, data: { x: null, y: '2' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await c.core.patchNamespacedConfigMap(
      { namespace: ns, name: 'p1', body: [{ op: 'add', path: '/data/z', value: '3' }] },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );
    const cm = await c.core.readNamespacedConfigMap({ namespace: ns, name: 'p1' });
    expect(cm.metadata?.labels).toEqual({ a: '1', b: '2' });
    expect(cm.data).toEqual({ y: '2', z: '3' });
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'smp' },
        spec: {
          nodeName: 'nowhere',
          containers: [
            { name: 'a', image: 'i:1', env: [{ name: 'A', value: '1' }] },
            { name: 'b', image: 'j:1' },
          ],
        },
      },
    });
    await c.core.patchNamespacedPod(
      { namespace: ns, name: 'smp', body: { spec: { containers: [{ name: 'b', image: 'j:2' }] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
    );
    const p = await c.core.readNamespacedPod({ namespace: ns, name: 'smp' });
    expect(p.spec?.containers.map((x) => `${x.name}=${x.image}`)).toEqual(['a=i:1', 'b=j:2']);
    const forbiddenChange = await c.core
      .patchNamespacedPod(
        { namespace: ns, name: 'smp', body: { spec: { restartPolicy: 'Never' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
      )
      .catch((x: unknown) => x);
    expect(statusOf(forbiddenChange).body.message).toMatch(
      /^Pod "smp" is invalid: spec: Forbidden: pod updates may not change fields other than/,
    );
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'smp', gracePeriodSeconds: 0 });
  });

  test('concurrent writers: patches never lose updates; updates with the same resourceVersion conflict', async () => {
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cc' } } });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        c.core.patchNamespacedConfigMap(
          { namespace: ns, name: 'cc', body: { metadata: { labels: { [`l${i}`]: 'x' } } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ),
      ),
    );
    expect(Object.keys((await c.core.readNamespacedConfigMap({ namespace: ns, name: 'cc' })).metadata?.labels ?? {})).toHaveLength(20);
    const base = await c.core.readNamespacedConfigMap({ namespace: ns, name: 'cc' });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) =>
        c.core.replaceNamespacedConfigMap({ namespace: ns, name: 'cc', body: { ...base, data: { v: String(i) } } }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => statusOf((r as PromiseRejectedResult).reason).code)).toEqual([
      409, 409, 409, 409,
    ]);
  });

  test('pagination with limit and continue', async () => {
    for (let i = 0; i < 5; i++)
      await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `page-${i}`, labels: { page: 'y' } } } });
    const first = await c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'page', limit: 2 });
    expect(first.items.map((i) => i.metadata?.name)).toEqual(['page-0', 'page-1']);
    expect(first.metadata?.remainingItemCount).toBe(3);
    const second = await c.core.listNamespacedConfigMap({
      namespace: ns,
      labelSelector: 'page',
      limit: 2,
      _continue: first.metadata!._continue!,
    });
    expect(second.items.map((i) => i.metadata?.name)).toEqual(['page-2', 'page-3']);
    const third = await c.core.listNamespacedConfigMap({
      namespace: ns,
      labelSelector: 'page',
      limit: 2,
      _continue: second.metadata!._continue!,
    });
    expect(third.items.map((i) => i.metadata?.name)).toEqual(['page-4']);
    expect(third.metadata?._continue).toBeUndefined();
  });

  test('namespaces: creating content in a missing or terminating namespace fails; deleting one removes its content', async () => {
    await c.core.createNamespace({ body: { metadata: { name: 'scratch' } } });
    await until('default SA in new namespace', async () =>
      c.core.readNamespacedServiceAccount({ namespace: 'scratch', name: 'default' }).then(
        () => true,
        () => false,
      ),
    );
    expect((await c.core.readNamespacedConfigMap({ namespace: 'scratch', name: 'kube-root-ca.crt' })).data?.['ca.crt']).toBe(cluster.caPem);
    await c.core.createNamespacedConfigMap({ namespace: 'scratch', body: { metadata: { name: 'x' } } });
    await c.core.deleteNamespace({ name: 'scratch' });
    await until('namespace gone', async () =>
      c.core.readNamespace({ name: 'scratch' }).then(
        () => false,
        (e: unknown) => statusOf(e).code === 404,
      ),
    );
    expect(cluster.list('configmaps', 'scratch')).toEqual([]);
  });

  test('SelfSubjectAccessReview and ClusterRoleBindings for service accounts', async () => {
    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'viewer' } } });
    await c.rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'viewer' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: ns }],
      },
    });
    const vc = clients(cluster.kubeconfigFor(ns, 'viewer'));
    const auth = vc.kc.makeApiClient(k8s.AuthorizationV1Api);
    const can = async (verb: string, resource: string, group = ''): Promise<boolean> =>
      (
        await auth.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { namespace: 'kube-system', verb, resource, group } } },
        })
      ).status!.allowed;
    expect(await can('list', 'jobs', 'batch')).toBe(true);
    expect(await can('create', 'jobs', 'batch')).toBe(false);
    expect((await vc.batch.listNamespacedJob({ namespace: 'kube-system' })).items).toEqual([]);
    const denied = await vc.core
      .createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'nope' } } })
      .catch((e: unknown) => e);
    expect(statusOf(denied).body).toMatchObject({
      code: 403,
      reason: 'Forbidden',
      message:
        'configmaps is forbidden: User "system:serviceaccount:default:viewer" cannot create resource "configmaps" in API group "" in the namespace "default"',
      details: { kind: 'configmaps' },
    });
  });

  test('deletecollection by label selector', async () => {
    for (const n of ['dc-1', 'dc-2', 'dc-3'])
      await c.core.createNamespacedConfigMap({
        namespace: ns,
        body: { metadata: { name: n, labels: { dc: n === 'dc-3' ? 'keep' : 'go' } } },
      });
    await c.core.deleteCollectionNamespacedConfigMap({ namespace: ns, labelSelector: 'dc=go' });
    const left = await c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'dc' });
    expect(left.items.map((i) => i.metadata?.name)).toEqual(['dc-3']);
  });
});

describe('watches', () => {
  test('watch from a resourceVersion delivers later events in order, filtered by selector, with bookmarks', async () => {
    const list = await c.core.listNamespacedConfigMap({ namespace: ns });
    const rv = list.metadata!.resourceVersion!;
    const seen: string[] = [];
    let bookmarks = 0;
    const ctl = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { resourceVersion: rv, labelSelector: 'w=yes', allowWatchBookmarks: true },
      (type, obj: k8s.V1ConfigMap) => {
        if (type === 'BOOKMARK') {
          bookmarks++;
          return;
        }
        seen.push(`${type} ${obj.metadata?.name} ${obj.data?.v ?? ''}`);
      },
      () => undefined,
    );
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'w1', labels: { w: 'yes' } }, data: { v: '1' } } });
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'w-other', labels: { w: 'no' } } } });
    await c.core.patchNamespacedConfigMap(
      { namespace: ns, name: 'w1', body: { data: { v: '2' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await c.core.patchNamespacedConfigMap(
      { namespace: ns, name: 'w-other', body: { metadata: { labels: { w: 'yes' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await c.core.deleteNamespacedConfigMap({ namespace: ns, name: 'w1' });
    await until('events', () => seen.length >= 4 && bookmarks >= 1, 5000);
    ctl.abort();
    expect(seen).toEqual(['ADDED w1 1', 'MODIFIED w1 2', 'ADDED w-other ', 'DELETED w1 2']);
  });

  test('a compacted resourceVersion gives 410 Gone as an ERROR event; the client re-lists and continues', async () => {
    const rv0 = (await c.core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'gone-1', labels: { g: '1' } } } });
    cluster.faults.compact();
    const errors: unknown[] = [];
    const doneP = new Promise<unknown>((resolve) => {
      void new k8s.Watch(c.kc).watch(
        `/api/v1/namespaces/${ns}/configmaps`,
        { resourceVersion: rv0 },
        (type, obj) => {
          if (type === 'ERROR') errors.push(obj);
        },
        resolve,
      );
    });
    expect(await doneP).toBeNull();
    expect(errors).toEqual([
      {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: expect.stringMatching(/^too old resource version: \d+ \(\d+\)$/),
        reason: 'Expired',
        code: 410,
      },
    ]);
    // re-list and watch from the new version
    const relist = await c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'g' });
    expect(relist.items.map((i) => i.metadata?.name)).toEqual(['gone-1']);
    const got: string[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { resourceVersion: relist.metadata!.resourceVersion!, labelSelector: 'g' },
      (type, obj: k8s.V1ConfigMap) => got.push(`${type} ${obj.metadata?.name}`),
      () => undefined,
    );
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'gone-2', labels: { g: '1' } } } });
    await until('event after re-list', () => got.length === 1, 5000);
    ctl.abort();
    expect(got).toEqual(['ADDED gone-2']);
  });
});

describe('generic clients', () => {
  test('KubernetesObjectApi (discovery-driven) creates, reads, patches and deletes objects from YAML', async () => {
    const api = k8s.KubernetesObjectApi.makeApiClient(c.kc);
    const docs = k8s.loadAllYaml(`apiVersion: v1
kind: ConfigMap
metadata: {name: generic-cm, namespace: default}
data: {a: "1"}
---
apiVersion: batch/v1
kind: Job
metadata: {name: generic-job, namespace: default}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: busybox, command: ["true"]}]
`) as k8s.KubernetesObject[];
    for (const d of docs) await api.create(d);
    const cm = (await api.read({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'generic-cm', namespace: 'default' },
    })) as k8s.V1ConfigMap;
    expect(cm.data).toEqual({ a: '1' });
    await api.patch(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'generic-cm', namespace: 'default' }, data: { b: '2' } } as k8s.V1ConfigMap,
      undefined,
      undefined,
      undefined,
      undefined,
      k8s.PatchStrategy.MergePatch,
    );
    expect(
      ((await api.read({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'generic-cm', namespace: 'default' } })) as k8s.V1ConfigMap)
        .data,
    ).toEqual({ a: '1', b: '2' });
    await jobDone(c.batch, ns, 'generic-job');
    const list = await api.list('batch/v1', 'Job', 'default');
    expect(list.items.map((i) => i.metadata?.name)).toContain('generic-job');
    for (const d of docs) await api.delete(d, undefined, undefined, undefined, undefined, 'Background');
  });
});

describe('informers', () => {
  test('a client-node informer re-lists after its watch expires and keeps its cache right', async () => {
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    const inf = k8s.makeInformer(c.kc, path, () => c.core.listNamespacedConfigMap({ namespace: ns, labelSelector: 'inf=1' }), 'inf=1');
    const added: string[] = [];
    inf.on('add', (o: k8s.V1ConfigMap) => added.push(o.metadata!.name!));
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inf-a', labels: { inf: '1' } } } });
    await inf.start();
    await until('watching', () => cluster.watchCount('configmaps') === 1, 5000);
    expect(cluster.faults.expireWatches('configmaps')).toBe(1);
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'inf-b', labels: { inf: '1' } } } });
    await until('informer saw inf-b', () => added.includes('inf-b'), 10_000);
    await inf.stop();
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['inf-a', 'inf-b']);
  });
});

describe('jobs and garbage collection', () => {
  test('client-node creates Jobs, lists them by label, and the job controller completes them', async () => {
    for (const n of ['cj-1', 'cj-2']) {
      const j = simpleJob(n, ['sh', '-c', 'echo done']);
      j.metadata!.labels = { batch: 'b1' };
      await c.batch.createNamespacedJob({ namespace: ns, body: j });
    }
    const l = await c.batch.listNamespacedJob({ namespace: ns, labelSelector: 'batch=b1' });
    expect(l.items.map((j) => j.metadata?.name)).toEqual(['cj-1', 'cj-2']);
    const j = await jobDone(c.batch, ns, 'cj-1');
    expect(j.spec?.selector?.matchLabels).toEqual({ 'batch.kubernetes.io/controller-uid': j.metadata?.uid });
    expect(j.spec?.template.metadata?.labels).toMatchObject({ 'job-name': 'cj-1', 'batch.kubernetes.io/job-name': 'cj-1' });
    expect(j.metadata?.labels).toEqual({ batch: 'b1' });
    const unlabelled = await c.batch.createNamespacedJob({
      namespace: ns,
      body: {
        metadata: { name: 'nolabels' },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'i', command: ['true'] }] } } },
      },
    });
    expect(unlabelled.metadata?.labels).toEqual({
      'batch.kubernetes.io/controller-uid': unlabelled.metadata?.uid,
      'batch.kubernetes.io/job-name': 'nolabels',
      'controller-uid': unlabelled.metadata?.uid,
      'job-name': 'nolabels',
    });
    expect(j.status).toMatchObject({ succeeded: 1, ready: 0, terminating: 0, uncountedTerminatedPods: {} });
    expect(j.status?.startTime).toBeDefined();
    expect(j.status?.completionTime).toBeDefined();
    expect(j.status?.conditions?.map((x) => [x.type, x.status, x.reason])).toEqual([
      ['SuccessCriteriaMet', 'True', 'CompletionsReached'],
      ['Complete', 'True', 'CompletionsReached'],
    ]);
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=cj-1' });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.status?.phase).toBe('Succeeded');
    expect(pod.metadata?.finalizers ?? []).toEqual([]);
    expect(pod.metadata?.ownerReferences).toEqual([
      { apiVersion: 'batch/v1', kind: 'Job', name: 'cj-1', uid: j.metadata?.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  });

  test('backoffLimit: failed pods are replaced until the limit, then Failed/BackoffLimitExceeded', async () => {
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('bo', ['sh', '-c', 'exit 3'], { backoffLimit: 1 }) });
    const j = await jobDone(c.batch, ns, 'bo');
    expect(j.status?.failed).toBe(2);
    expect(j.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      status: 'True',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=bo' });
    expect(pods.items.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.exitCode)).toEqual([3, 3]);
    expect(pods.items.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.reason)).toEqual(['Error', 'Error']);
  });

  test('podFailurePolicy: FailJob on an exit code fails at once; Ignore on DisruptionTarget does not count', async () => {
    const policy = {
      rules: [
        { action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } },
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
      ],
    };
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: simpleJob('pfp', ['sh', '-c', 'exit 42'], { backoffLimit: 5, podFailurePolicy: policy }),
    });
    const j = await jobDone(c.batch, ns, 'pfp');
    expect(j.status?.failed).toBe(1);
    expect(j.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      reason: 'PodFailurePolicy',
      message: expect.stringMatching(
        /^Container main for pod default\/pfp-[a-z0-9]{5} failed with exit code 42 matching FailJob rule at index 0$/,
      ),
    });
  });

  test('activeDeadlineSeconds fails a running Job with DeadlineExceeded and kills its pod', async () => {
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('dl', ['sleep', '30'], { activeDeadlineSeconds: 1 }) });
    const j = await jobDone(c.batch, ns, 'dl', 10_000);
    expect(j.status?.conditions?.find((x) => x.type === 'Failed')).toMatchObject({
      reason: 'DeadlineExceeded',
      message: 'Job was active longer than specified deadline',
    });
    await until('pod gone', async () =>
      (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=dl' })).items.every((p) => p.status?.phase === 'Failed'),
    );
  });

  test('ttlSecondsAfterFinished deletes a finished Job and its pods', async () => {
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('ttl', ['true'], { ttlSecondsAfterFinished: 0 }) });
    await until(
      'ttl job deleted',
      async () =>
        await c.batch.readNamespacedJob({ namespace: ns, name: 'ttl' }).then(
          () => false,
          (e: unknown) => statusOf(e).code === 404,
        ),
    );
    await until(
      'ttl pods deleted',
      async () => (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=ttl' })).items.length === 0,
    );
  });

  test('worker Jobs owned by a leader Job are collected in cascade when the leader is deleted', async () => {
    const leader = await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('leader-x', ['sleep', '30']) });
    const w = simpleJob('worker-x', ['sleep', '30']);
    w.metadata!.ownerReferences = [
      { apiVersion: 'batch/v1', kind: 'Job', name: 'leader-x', uid: leader.metadata!.uid!, controller: false, blockOwnerDeletion: true },
    ];
    await c.batch.createNamespacedJob({ namespace: ns, body: w });
    await until('worker pod running', async () =>
      (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=worker-x' })).items.some(
        (p) => p.status?.phase === 'Running',
      ),
    );
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'leader-x', propagationPolicy: 'Background' });
    await until(
      'worker job and pods gone',
      async () => {
        const jobs = await c.batch.listNamespacedJob({ namespace: ns, fieldSelector: 'metadata.name=worker-x' });
        const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name in (worker-x,leader-x)' });
        return jobs.items.length === 0 && pods.items.length === 0;
      },
      15_000,
    );
  });

  test('deleting a Job: default orphans pods (with a warning), Background and Foreground remove them', async () => {
    for (const n of ['gc-o', 'gc-b']) await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob(n, ['sleep', '30']) });
    // this one ignores SIGTERM, so its pod lingers for its 2 s grace period and blocks the owner
    const slow = simpleJob('gc-f', ['sh', '-c', 'trap "" TERM; sleep 30']);
    slow.spec!.template.spec!.terminationGracePeriodSeconds = 2;
    await c.batch.createNamespacedJob({ namespace: ns, body: slow });
    await until(
      'pods running',
      async () =>
        (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name in (gc-o,gc-b,gc-f)' })).items.filter(
          (p) => p.status?.phase === 'Running',
        ).length === 3,
    );
    const orphaning = await raw(c.kc, 'DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/gc-o`);
    expect(orphaning.headers.warning).toBe(
      '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning"',
    );
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'gc-b', propagationPolicy: 'Background' });
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'gc-f', propagationPolicy: 'Foreground' });
    const during = await c.batch.readNamespacedJob({ namespace: ns, name: 'gc-f' });
    expect(during.metadata?.deletionTimestamp).toBeDefined();
    expect(during.metadata?.finalizers).toContain('foregroundDeletion');
    await until(
      'gc-b and gc-f pods gone',
      async () => (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name in (gc-b,gc-f)' })).items.length === 0,
      15_000,
    );
    await until('gc-f job gone', async () =>
      c.batch.readNamespacedJob({ namespace: ns, name: 'gc-f' }).then(
        () => false,
        () => true,
      ),
    );
    const orphans = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=gc-o' });
    expect(orphans.items).toHaveLength(1);
    expect(orphans.items[0]!.metadata?.ownerReferences).toBeUndefined();
    await c.core.deleteNamespacedPod({ namespace: ns, name: orphans.items[0]!.metadata!.name!, gracePeriodSeconds: 0 });
  });
});
