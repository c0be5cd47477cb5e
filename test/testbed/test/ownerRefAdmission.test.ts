/**
 * The OwnerReferencesPermissionEnforcement admission plugin as an option
 * (`enableAdmissionPlugins`): an ownerReference with blockOwnerDeletion needs `update` on the
 * owner's `finalizers` (else 403 with the real server's message), any ownerReference needs
 * `delete` on the object; a default cluster, like a default kube-apiserver, checks neither.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, simpleJob, statusOf } from '../src/cluster/testutil.js';

const ns = 'default';
let enforcing: TestCluster;
let plain: TestCluster;

beforeAll(async () => {
  [enforcing, plain] = await Promise.all([
    startTestCluster({
      nodes: [{ name: 'node-1' }],
      mountNamespaces: false,
      enableAdmissionPlugins: ['OwnerReferencesPermissionEnforcement'],
    }),
    startTestCluster({ nodes: [{ name: 'node-1' }], mountNamespaces: false }),
  ]);
  for (const c of [enforcing, plain]) await setUp(c);
}, 60_000);
afterAll(async () => {
  await Promise.all([enforcing?.stop(), plain?.stop()]);
});

const ROLE = 'owner-maker';

/** The service account `maker` may create, patch and delete ConfigMaps and read Jobs; a suspended Job `owner` exists. */
async function setUp(cluster: TestCluster): Promise<void> {
  const admin = clients(cluster.kubeconfigPath);
  await admin.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'maker' } } });
  await admin.rbac.createNamespacedRole({
    namespace: ns,
    body: {
      metadata: { name: ROLE },
      rules: [
        { apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'patch', 'delete'] },
        { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'update', 'delete'] },
      ],
    },
  });
  await admin.rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: ROLE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ROLE },
      subjects: [{ kind: 'ServiceAccount', name: 'maker', namespace: ns }],
    },
  });
  await admin.batch.createNamespacedJob({ namespace: ns, body: simpleJob('owner', ['true'], { suspend: true }) });
}

async function ownerRef(cluster: TestCluster, block?: boolean): Promise<k8s.V1OwnerReference> {
  const job = await clients(cluster.kubeconfigPath).batch.readNamespacedJob({ namespace: ns, name: 'owner' });
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    name: 'owner',
    uid: job.metadata!.uid!,
    ...(block === undefined ? {} : { blockOwnerDeletion: block }),
  };
}

function asMaker(cluster: TestCluster): k8s.CoreV1Api {
  return clients(cluster.kubeconfigFor(ns, 'maker')).core;
}

async function createChild(
  cluster: TestCluster,
  name: string,
  block?: boolean,
): Promise<{ code: number; message?: string; reason?: string }> {
  const body = { metadata: { name, ownerReferences: [await ownerRef(cluster, block)] } };
  return asMaker(cluster)
    .createNamespacedConfigMap({ namespace: ns, body })
    .then(
      () => ({ code: 201 }),
      (e: unknown) => {
        const s = statusOf(e);
        return { code: s.code, message: s.body.message, reason: s.body.reason };
      },
    );
}

const FINALIZERS_MESSAGE = "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>";

async function grantJobFinalizers(cluster: TestCluster): Promise<void> {
  await clients(cluster.kubeconfigPath).rbac.patchNamespacedRole(
    {
      namespace: ns,
      name: ROLE,
      body: [{ op: 'add', path: '/rules/-', value: { apiGroups: ['batch'], resources: ['jobs/finalizers'], verbs: ['update'] } }],
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
  );
}

describe('OwnerReferencesPermissionEnforcement', () => {
  test("blockOwnerDeletion without update on the owner's finalizers is refused with the real message; an ownerReference without it is fine", async () => {
    expect(await createChild(enforcing, 'child-blocking', true)).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: `configmaps "child-blocking" is forbidden: ${FINALIZERS_MESSAGE}`,
    });
    expect(enforcing.get('configmaps', ns, 'child-blocking')).toBeUndefined();
    expect(await createChild(enforcing, 'child-plain')).toEqual({ code: 201 });
    expect(await createChild(enforcing, 'child-false', false)).toEqual({ code: 201 });
  });

  test('turning blockOwnerDeletion on in an update is refused the same way', async () => {
    const ref = await ownerRef(enforcing, true);
    const e = await asMaker(enforcing)
      .patchNamespacedConfigMap(
        { namespace: ns, name: 'child-false', body: { metadata: { ownerReferences: [ref] } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch((x: unknown) => x);
    expect(statusOf(e).code).toBe(403);
    expect(statusOf(e).body.message).toBe(`configmaps "child-false" is forbidden: ${FINALIZERS_MESSAGE}`);
  });

  test('an ownerReference on an object the user cannot delete is refused', async () => {
    const admin = clients(enforcing.kubeconfigPath);
    await admin.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'nodelete' } } });
    await admin.rbac.createNamespacedRole({
      namespace: ns,
      body: { metadata: { name: 'nodelete' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create'] }] },
    });
    await admin.rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'nodelete' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'nodelete' },
        subjects: [{ kind: 'ServiceAccount', name: 'nodelete', namespace: ns }],
      },
    });
    const core = clients(enforcing.kubeconfigFor(ns, 'nodelete')).core;
    const body = { metadata: { name: 'child-nodelete', ownerReferences: [await ownerRef(enforcing)] } };
    const e = await core.createNamespacedConfigMap({ namespace: ns, body }).catch((x: unknown) => x);
    expect(statusOf(e).code).toBe(403);
    expect(statusOf(e).body.message).toBe(
      `configmaps "child-nodelete" is forbidden: cannot set an ownerRef on a resource you can't delete: , <nil>`,
    );
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'child-unowned' } } });
  });

  test('with update on jobs/finalizers granted, blockOwnerDeletion is accepted', async () => {
    await grantJobFinalizers(enforcing);
    expect(await createChild(enforcing, 'child-blocking', true)).toEqual({ code: 201 });
    const stored = enforcing.get('configmaps', ns, 'child-blocking');
    expect((stored?.metadata.ownerReferences as k8s.V1OwnerReference[])[0]?.blockOwnerDeletion).toBe(true);
  });

  test('off by default, as in a default kube-apiserver', async () => {
    expect(await createChild(plain, 'child-blocking', true)).toEqual({ code: 201 });
  });
});
