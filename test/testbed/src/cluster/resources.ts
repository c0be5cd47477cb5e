/** The API resources the test cluster serves, with the metadata discovery and validation need. */
export interface ResourceInfo {
  group: string; // '' for core
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  /** subresource name -> kind served by it, verbs */
  subresources: Record<string, { kind: string; verbs: string[]; group?: string; version?: string }>;
  /** client-node model class (for type/unknown-field checks) */
  model: string;
  /** kubernetes-models schema module (for required/enum checks) */
  schema: string;
  /** whether spec/status are split (PUT on the resource ignores status; /status ignores the rest) */
  hasStatus: boolean;
  /** create-only resources (reviews, token requests) are not stored */
  virtual?: boolean;
}

const RW = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function r(p: Partial<ResourceInfo> & Pick<ResourceInfo, 'group' | 'kind' | 'plural' | 'namespaced' | 'model' | 'schema'>): ResourceInfo {
  return {
    version: 'v1',
    singular: p.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    verbs: RW,
    subresources: {},
    hasStatus: false,
    ...p,
  };
}

export const RESOURCES: ResourceInfo[] = [
  r({
    group: '',
    kind: 'Namespace',
    plural: 'namespaces',
    namespaced: false,
    shortNames: ['ns'],
    model: 'V1Namespace',
    schema: 'IoK8sApiCoreV1Namespace',
    hasStatus: true,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: { status: { kind: 'Namespace', verbs: ['get', 'patch', 'update'] }, finalize: { kind: 'Namespace', verbs: ['update'] } },
  }),
  r({
    group: '',
    kind: 'Node',
    plural: 'nodes',
    namespaced: false,
    shortNames: ['no'],
    model: 'V1Node',
    schema: 'IoK8sApiCoreV1Node',
    hasStatus: true,
    subresources: { status: { kind: 'Node', verbs: ['get', 'patch', 'update'] } },
  }),
  r({
    group: '',
    kind: 'Pod',
    plural: 'pods',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    model: 'V1Pod',
    schema: 'IoK8sApiCoreV1Pod',
    hasStatus: true,
    subresources: {
      status: { kind: 'Pod', verbs: ['get', 'patch', 'update'] },
      log: { kind: 'Pod', verbs: ['get'] },
      binding: { kind: 'Binding', verbs: ['create'] },
      eviction: { kind: 'Eviction', verbs: ['create'], group: 'policy', version: 'v1' },
    },
  }),
  r({
    group: '',
    kind: 'Event',
    plural: 'events',
    namespaced: true,
    shortNames: ['ev'],
    model: 'CoreV1Event',
    schema: 'IoK8sApiCoreV1Event',
  }),
  r({ group: '', kind: 'Secret', plural: 'secrets', namespaced: true, model: 'V1Secret', schema: 'IoK8sApiCoreV1Secret' }),
  r({
    group: '',
    kind: 'ConfigMap',
    plural: 'configmaps',
    namespaced: true,
    shortNames: ['cm'],
    model: 'V1ConfigMap',
    schema: 'IoK8sApiCoreV1ConfigMap',
  }),
  r({
    group: '',
    kind: 'Service',
    plural: 'services',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    model: 'V1Service',
    schema: 'IoK8sApiCoreV1Service',
    hasStatus: true,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: { status: { kind: 'Service', verbs: ['get', 'patch', 'update'] } },
  }),
  r({
    group: '',
    kind: 'ServiceAccount',
    plural: 'serviceaccounts',
    namespaced: true,
    shortNames: ['sa'],
    model: 'V1ServiceAccount',
    schema: 'IoK8sApiCoreV1ServiceAccount',
    subresources: { token: { kind: 'TokenRequest', verbs: ['create'], group: 'authentication.k8s.io', version: 'v1' } },
  }),
  r({
    group: 'batch',
    kind: 'Job',
    plural: 'jobs',
    namespaced: true,
    categories: ['all'],
    model: 'V1Job',
    schema: 'IoK8sApiBatchV1Job',
    hasStatus: true,
    subresources: { status: { kind: 'Job', verbs: ['get', 'patch', 'update'] } },
  }),
  r({
    group: '',
    kind: 'ResourceQuota',
    plural: 'resourcequotas',
    namespaced: true,
    shortNames: ['quota'],
    model: 'V1ResourceQuota',
    schema: 'IoK8sApiCoreV1ResourceQuota',
    hasStatus: true,
    subresources: { status: { kind: 'ResourceQuota', verbs: ['get', 'patch', 'update'] } },
  }),
  r({
    group: '',
    kind: 'LimitRange',
    plural: 'limitranges',
    namespaced: true,
    shortNames: ['limits'],
    model: 'V1LimitRange',
    schema: 'IoK8sApiCoreV1LimitRange',
  }),
  r({ group: 'rbac.authorization.k8s.io', kind: 'Role', plural: 'roles', namespaced: true, model: 'V1Role', schema: 'IoK8sApiRbacV1Role' }),
  r({
    group: 'rbac.authorization.k8s.io',
    kind: 'RoleBinding',
    plural: 'rolebindings',
    namespaced: true,
    model: 'V1RoleBinding',
    schema: 'IoK8sApiRbacV1RoleBinding',
  }),
  r({
    group: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    plural: 'clusterroles',
    namespaced: false,
    model: 'V1ClusterRole',
    schema: 'IoK8sApiRbacV1ClusterRole',
  }),
  r({
    group: 'rbac.authorization.k8s.io',
    kind: 'ClusterRoleBinding',
    plural: 'clusterrolebindings',
    namespaced: false,
    model: 'V1ClusterRoleBinding',
    schema: 'IoK8sApiRbacV1ClusterRoleBinding',
  }),
  r({
    group: 'authorization.k8s.io',
    kind: 'SelfSubjectAccessReview',
    plural: 'selfsubjectaccessreviews',
    namespaced: false,
    verbs: ['create'],
    model: 'V1SelfSubjectAccessReview',
    schema: 'IoK8sApiAuthorizationV1SelfSubjectAccessReview',
    virtual: true,
  }),
  r({
    group: 'authorization.k8s.io',
    kind: 'SelfSubjectRulesReview',
    plural: 'selfsubjectrulesreviews',
    namespaced: false,
    verbs: ['create'],
    model: 'V1SelfSubjectRulesReview',
    schema: 'IoK8sApiAuthorizationV1SelfSubjectRulesReview',
    virtual: true,
  }),
  r({
    group: 'authentication.k8s.io',
    kind: 'SelfSubjectReview',
    plural: 'selfsubjectreviews',
    namespaced: false,
    verbs: ['create'],
    model: 'V1SelfSubjectReview',
    schema: 'IoK8sApiAuthenticationV1SelfSubjectReview',
    virtual: true,
  }),
];

export const GROUP_VERSIONS: { group: string; version: string }[] = [
  { group: '', version: 'v1' },
  { group: 'batch', version: 'v1' },
  { group: 'rbac.authorization.k8s.io', version: 'v1' },
  { group: 'authorization.k8s.io', version: 'v1' },
  { group: 'authentication.k8s.io', version: 'v1' },
];

export function gvString(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export function findResource(group: string, version: string, plural: string): ResourceInfo | undefined {
  return RESOURCES.find((x) => x.group === group && x.version === version && x.plural === plural);
}
export function resourceForKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return RESOURCES.find((x) => x.group === g && x.version === v && x.kind === kind);
}
/** "jobs.batch" / "pods" as used in error messages. */
export function qualifiedResource(info: ResourceInfo): string {
  return info.group ? `${info.plural}.${info.group}` : info.plural;
}
/** "Job.batch" / "Pod" as used in Invalid messages. */
export function qualifiedKind(info: ResourceInfo): string {
  return info.group ? `${info.kind}.${info.group}` : info.kind;
}
export function resKey(info: ResourceInfo): string {
  return info.group ? `${info.group}/${info.plural}` : info.plural;
}
