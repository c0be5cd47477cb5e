/**
 * What a fresh cluster holds before anyone talks to it: namespaces, the default cluster roles
 * and bindings (cluster-admin, view, edit, service-account issuer discovery), the Node objects, the `kubernetes` Service; and the kubeconfig files it writes.
 */
import { info, now, type Registry } from './registry.js';
import { DISCOVERY_URLS } from './serviceAccountIssuer.js';
import type { Obj } from './store.js';
import type { NodeSpec } from './types.js';

/** The Node object a kubelet registers for a node spec (capacity = allocatable, all conditions healthy). */
export function nodeObject(n: NodeSpec): Obj {
  const alloc: Record<string, string> = {
    cpu: n.cpu ?? '4',
    memory: n.memory ?? '16Gi',
    'ephemeral-storage': n.ephemeralStorage ?? '100Gi',
    pods: String(n.pods ?? 110),
    ...(n.gpu !== undefined ? { 'nvidia.com/gpu': String(n.gpu) } : {}),
  };
  const t = now();
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: n.name,
      labels: {
        'kubernetes.io/hostname': n.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': 'amd64',
        ...(n.labels ?? {}),
      },
    },
    spec: { ...(n.taints?.length ? { taints: n.taints } : {}), ...(n.unschedulable ? { unschedulable: true } : {}) },
    status: {
      capacity: alloc,
      allocatable: alloc,
      conditions: [
        {
          type: 'MemoryPressure',
          status: 'False',
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: 'KubeletHasSufficientMemory',
          message: 'kubelet has sufficient memory available',
        },
        {
          type: 'DiskPressure',
          status: 'False',
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: 'KubeletHasNoDiskPressure',
          message: 'kubelet has no disk pressure',
        },
        {
          type: 'PIDPressure',
          status: 'False',
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: 'KubeletHasSufficientPID',
          message: 'kubelet has sufficient PID available',
        },
        {
          type: 'Ready',
          status: 'True',
          lastHeartbeatTime: t,
          lastTransitionTime: t,
          reason: 'KubeletReady',
          message: 'kubelet is posting ready status',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: n.name },
      ],
      nodeInfo: {
        kubeletVersion: 'v1.32.0',
        kubeProxyVersion: 'v1.32.0',
        operatingSystem: 'linux',
        architecture: 'amd64',
        containerRuntimeVersion: 'local-process://1.0',
        osImage: 'toil-ts test cluster',
        kernelVersion: '',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  };
}

export interface KubeconfigFor {
  server: string;
  caPem: string;
  /** user name in the file (e.g. `admin`, `system:serviceaccount:<ns>:<sa>`) */
  user: string;
  token: string;
  /** the context's namespace */
  namespace: string;
}

/** A kubeconfig (JSON) with one cluster, user and context, all named for the test cluster. */
export function kubeconfigText(k: KubeconfigFor): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'test-cluster',
      preferences: {},
      clusters: [
        { name: 'test-cluster', cluster: { server: k.server, 'certificate-authority-data': Buffer.from(k.caPem).toString('base64') } },
      ],
      users: [{ name: k.user, user: { token: k.token } }],
      contexts: [{ name: 'test-cluster', context: { cluster: 'test-cluster', user: k.user, namespace: k.namespace } }],
    },
    null,
    2,
  );
}

const RBAC = 'rbac.authorization.k8s.io';
const BOOTSTRAPPING = { 'kubernetes.io/bootstrapping': 'rbac-defaults' };

/** The system namespaces, plus `namespace` when it is another. */
async function createNamespaces(registry: Registry, namespace: string): Promise<void> {
  for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease', ...(namespace !== 'default' ? [namespace] : [])]) {
    await registry.create(info('', 'namespaces'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } });
  }
}

/** cluster-admin (bound to system:masters), view and edit, as a real cluster's defaults. */
async function createDefaultRoles(registry: Registry): Promise<void> {
  await registry.create(info(RBAC, 'clusterroles'), undefined, {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRole',
    metadata: { name: 'cluster-admin', labels: BOOTSTRAPPING },
    rules: [
      { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
      { nonResourceURLs: ['*'], verbs: ['*'] },
    ],
  });
  await registry.create(info(RBAC, 'clusterrolebindings'), undefined, {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name: 'cluster-admin', labels: BOOTSTRAPPING },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: RBAC, kind: 'Group', name: 'system:masters' }],
  });
  for (const [name, verbs] of [
    ['view', ['get', 'list', 'watch']],
    ['edit', ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']],
  ] as const) {
    await registry.create(info(RBAC, 'clusterroles'), undefined, {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name, labels: BOOTSTRAPPING },
      rules: [
        {
          apiGroups: [''],
          resources: [
            'pods',
            'pods/log',
            'pods/status',
            'configmaps',
            'events',
            'serviceaccounts',
            ...(name === 'edit' ? ['secrets'] : []),
          ],
          verbs: [...verbs],
        },
        { apiGroups: ['batch'], resources: ['jobs', 'jobs/status'], verbs: [...verbs] },
      ],
    });
  }
}

/**
 * `system:service-account-issuer-discovery`, bound to every service account as on a real
 * cluster: the issuer's discovery documents are not public until someone binds the role to
 * `system:unauthenticated` (see serviceAccountIssuer.ts).
 */
async function createIssuerDiscoveryRole(registry: Registry): Promise<void> {
  const name = 'system:service-account-issuer-discovery';
  await registry.create(info(RBAC, 'clusterroles'), undefined, {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRole',
    metadata: { name, labels: BOOTSTRAPPING },
    rules: [{ nonResourceURLs: DISCOVERY_URLS, verbs: ['get'] }],
  });
  await registry.create(info(RBAC, 'clusterrolebindings'), undefined, {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels: BOOTSTRAPPING },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name },
    subjects: [{ apiGroup: RBAC, kind: 'Group', name: 'system:serviceaccounts' }],
  });
}

/** Namespaces and default cluster roles: what exists before the API server listens. */
export async function bootstrapObjects(registry: Registry, namespace: string): Promise<void> {
  await createNamespaces(registry, namespace);
  await createDefaultRoles(registry);
  await createIssuerDiscoveryRole(registry);
}

/** The `kubernetes` Service every cluster has (kubectl cluster-info looks for it). */
export async function createKubernetesService(registry: Registry, port: number): Promise<void> {
  await registry.create(info('', 'services'), 'default', {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }], type: 'ClusterIP' },
  });
}
