/** The create-only review resources: SelfSubjectReview (whoami) and SelfSubjectAccessReview (can-i). */
import { authorize, type Attributes, type User } from './auth.js';
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
