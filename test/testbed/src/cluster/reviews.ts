/** The create-only review resources: SelfSubjectReview (whoami), SelfSubjectAccessReview (can-i) and SelfSubjectRulesReview (can-i --list). */
import { authorize, rulesFor, type Attributes, type User } from './auth.js';
import { badRequest } from './errors.js';
import type { ResourceInfo } from './resources.js';
import type { Obj, Store } from './store.js';

/** A review's body, who asks, and the store RBAC is read from. */
export interface ReviewRequest {
  store: Store;
  info: ResourceInfo;
  body: unknown;
  user: User;
}

export function review({ store, info, body, user }: ReviewRequest): Obj {
  const b = (body ?? {}) as Obj;
  if (info.kind === 'SelfSubjectReview') {
    return {
      kind: 'SelfSubjectReview',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { creationTimestamp: null },
      status: {
        userInfo: {
          username: user.name,
          groups: user.groups,
          ...(user.uid ? { uid: user.uid } : {}),
          ...(user.extra ? { extra: user.extra } : {}),
        },
      },
    };
  }
  if (info.kind === 'SelfSubjectRulesReview') return rulesReview(store, b, user);
  const ra = (b.spec?.resourceAttributes ?? {}) as Obj;
  const nra = b.spec?.nonResourceAttributes as Obj | undefined;
  const attrs: Attributes = nra
    ? {
        verb: nra.verb ?? '',
        resourceRequest: false,
        path: nra.path ?? '',
        apiGroup: '',
        resource: '',
        subresource: '',
        name: '',
        namespace: '',
      }
    : {
        verb: ra.verb ?? '',
        resourceRequest: true,
        path: '',
        apiGroup: ra.group ?? '',
        resource: ra.resource ?? '',
        subresource: ra.subresource ?? '',
        name: ra.name ?? '',
        namespace: ra.namespace ?? '',
      };
  const allowed = authorize(store, user, attrs);
  return {
    ...b,
    kind: 'SelfSubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    status: { allowed, ...(allowed ? { reason: 'RBAC: allowed' } : {}) },
  };
}

/** The rules the user has in a namespace, resource rules and non-resource rules apart, as RBAC's rule resolver lists them. */
function rulesReview(store: Store, b: Obj, user: User): Obj {
  const namespace = String(b.spec?.namespace ?? '');
  if (!namespace) throw badRequest('no namespace on request');
  const rules = rulesFor(store, user, namespace);
  const resourceRules = rules
    .filter((r) => (r.resources ?? []).length)
    .map((r) => ({
      verbs: r.verbs ?? [],
      apiGroups: r.apiGroups ?? [],
      resources: r.resources,
      ...((r.resourceNames ?? []).length ? { resourceNames: r.resourceNames } : {}),
    }));
  const nonResourceRules = rules
    .filter((r) => (r.nonResourceURLs ?? []).length)
    .map((r) => ({ verbs: r.verbs ?? [], nonResourceURLs: r.nonResourceURLs }));
  return {
    kind: 'SelfSubjectRulesReview',
    apiVersion: 'authorization.k8s.io/v1',
    metadata: { creationTimestamp: null },
    spec: { namespace },
    status: { resourceRules, nonResourceRules, incomplete: false },
  };
}
