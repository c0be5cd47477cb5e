/** Subresources that create: serviceaccounts/token (TokenRequest), pods/eviction and pods/binding. */
import type { Authenticator } from './auth.js';
import { ApiError, badRequest, notFoundPath } from './errors.js';
import type { Registry } from './registry.js';
import type { ResourceInfo } from './resources.js';
import type { Obj } from './store.js';

/** The object a subresource create is about, and what the server needs to answer it. */
export interface SubresourceTarget {
  registry: Registry;
  auth: Authenticator;
  evict: (pod: Obj) => Promise<void>;
  info: ResourceInfo;
  ns: string | undefined;
  name: string;
  sub: string;
}

export async function createSubresource(at: SubresourceTarget, body: unknown): Promise<Obj> {
  const { registry: reg, info, ns, name, sub } = at;
  const b = (body ?? {}) as Obj;
  if (info.kind === 'ServiceAccount' && sub === 'token') {
    reg.get(info, ns, name);
    const spec = (b.spec ?? {}) as Obj;
    let pod: Obj | undefined;
    if (spec.boundObjectRef?.kind === 'Pod') pod = reg.store.peek('pods', ns, spec.boundObjectRef.name);
    const exp = Math.max(600, Number(spec.expirationSeconds ?? 3600));
    const t = at.auth.issueServiceAccountToken(ns!, name, {
      expirationSeconds: exp,
      ...(pod ? { pod } : {}),
      ...(spec.audiences ? { audiences: spec.audiences } : {}),
    });
    return {
      kind: 'TokenRequest',
      apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace: ns, creationTimestamp: null },
      spec: {
        audiences: spec.audiences ?? ['https://kubernetes.default.svc.cluster.local'],
        expirationSeconds: exp,
        boundObjectRef: spec.boundObjectRef ?? null,
      },
      status: { token: t.token, expirationTimestamp: t.expirationTimestamp },
    };
  }
  if (info.kind === 'Pod' && sub === 'eviction') {
    const pod = reg.get(info, ns, name);
    await at.evict(pod);
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }
  if (info.kind === 'Pod' && sub === 'binding') {
    const target = b.target?.name as string | undefined;
    if (!target) throw badRequest('target name is required');
    const pod = reg.get(info, ns, name);
    if (pod.spec.nodeName)
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on pods/binding "${name}": pod ${name} is already assigned to node "${String(pod.spec.nodeName)}"`,
        { name, kind: 'pods/binding' },
      );
    const p = reg.store.get('pods', ns, name)!;
    p.spec.nodeName = target;
    reg.store.update('pods', p);
    reg.onChange();
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }
  throw notFoundPath();
}
