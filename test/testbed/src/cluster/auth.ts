/** Authentication (admin token, service-account JWTs) and RBAC authorization. */
import { ApiError } from './errors.js';
import { API_AUDIENCE, type ServiceAccountIssuer } from './serviceAccountIssuer.js';
import type { Store, Obj } from './store.js';

export interface User {
  name: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}
export interface Attributes {
  verb: string;
  resourceRequest: boolean;
  path: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  name: string;
  namespace: string;
}

export class Authenticator {
  constructor(
    private store: Store,
    readonly issuer: ServiceAccountIssuer,
    private adminToken: string,
  ) {}

  issueServiceAccountToken(
    ns: string,
    sa: string,
    opts: { expirationSeconds?: number; pod?: Obj; audiences?: string[] } = {},
  ): { token: string; expirationTimestamp: string } {
    const saObj = this.store.peek('serviceaccounts', ns, sa);
    if (!saObj) throw new Error(`serviceaccount ${ns}/${sa} not found`);
    const iat = Math.floor(Date.now() / 1000);
    const exp = iat + (opts.expirationSeconds ?? 3607);
    const claims: Record<string, unknown> = {
      aud: opts.audiences?.length ? opts.audiences : [API_AUDIENCE],
      exp,
      iat,
      nbf: iat,
      iss: this.issuer.issuer,
      sub: `system:serviceaccount:${ns}:${sa}`,
      'kubernetes.io': {
        namespace: ns,
        serviceaccount: { name: sa, uid: saObj.metadata.uid },
        ...(opts.pod
          ? {
              pod: { name: opts.pod.metadata.name, uid: opts.pod.metadata.uid },
              node: opts.pod.spec?.nodeName ? { name: opts.pod.spec.nodeName } : undefined,
            }
          : {}),
      },
    };
    return { token: this.issuer.sign(claims), expirationTimestamp: new Date(exp * 1000).toISOString().replace(/\.\d+Z$/, 'Z') };
  }

  /** The token is this cluster's, for its API, and within its validity (`nbf` ≤ now < `exp`). */
  private forThisApiServer(claims: Record<string, unknown>): boolean {
    const now = Date.now() / 1000;
    const aud = claims['aud'];
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (claims['iss'] !== this.issuer.issuer || !audiences.includes(API_AUDIENCE)) return false;
    if (typeof claims['exp'] !== 'number' || claims['exp'] <= now) return false;
    return typeof claims['nbf'] !== 'number' || claims['nbf'] <= now;
  }

  /**
   * Returns the user for a bearer token; throws 401 for a bad token (another signer or issuer,
   * not for the API audience, expired, its service account or bound pod gone); anonymous when none.
   */
  authenticate(authorization: string | undefined): User {
    if (!authorization) return { name: 'system:anonymous', groups: ['system:unauthenticated'] };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (!m) throw unauthorized();
    const token = m[1]!;
    if (token === this.adminToken) return { name: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };
    const claims = this.issuer.verify(token);
    if (!claims || !this.forThisApiServer(claims)) throw unauthorized();
    const k = claims['kubernetes.io'] as Obj | undefined;
    if (!k) throw unauthorized();
    const ns = k.namespace as string;
    const sa = k.serviceaccount?.name as string;
    const saObj = this.store.peek('serviceaccounts', ns, sa);
    if (!saObj || saObj.metadata.uid !== k.serviceaccount?.uid) throw unauthorized();
    if (k.pod) {
      const pod = this.store.peek('pods', ns, k.pod.name);
      if (!pod || pod.metadata.uid !== k.pod.uid) throw unauthorized();
    }
    return {
      name: `system:serviceaccount:${ns}:${sa}`,
      uid: saObj.metadata.uid,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
      ...(k.pod
        ? { extra: { 'authentication.kubernetes.io/pod-name': [k.pod.name], 'authentication.kubernetes.io/pod-uid': [k.pod.uid] } }
        : {}),
    };
  }
}

export function unauthorized(): ApiError {
  return new ApiError(401, 'Unauthorized', 'Unauthorized');
}

/**
 * The bootstrap roles every cluster binds to groups (system:public-info-viewer, system:discovery,
 * system:basic-user, and cluster-admin for system:masters), as rules per group.
 */
const BOOTSTRAP_RULES: { groups: string[]; rules: Obj[] }[] = [
  {
    groups: ['system:masters'],
    rules: [
      { verbs: ['*'], apiGroups: ['*'], resources: ['*'] },
      { verbs: ['*'], nonResourceURLs: ['*'] },
    ],
  },
  {
    groups: ['system:authenticated'],
    rules: [
      { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['selfsubjectreviews'] },
      { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'] },
      {
        verbs: ['get'],
        nonResourceURLs: [
          '/api',
          '/api/*',
          '/apis',
          '/apis/*',
          '/healthz',
          '/livez',
          '/openapi',
          '/openapi/*',
          '/readyz',
          '/version',
          '/version/',
        ],
      },
    ],
  },
  {
    groups: ['system:authenticated', 'system:unauthenticated'],
    rules: [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/livez', '/readyz', '/version', '/version/'] }],
  },
];

function subjectMatches(s: Obj, user: User, bindingNs: string | undefined): boolean {
  if (s.kind === 'User') return s.name === user.name;
  if (s.kind === 'Group') return user.groups.includes(s.name);
  if (s.kind === 'ServiceAccount') return user.name === `system:serviceaccount:${s.namespace || bindingNs}:${s.name}`;
  return false;
}

function ruleAllows(rule: Obj, a: Attributes): boolean {
  const has = (list: string[] | undefined, v: string): boolean => !!list && (list.includes('*') || list.includes(v));
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.resourceRequest) {
    return (
      (rule.nonResourceURLs as string[] | undefined)?.some(
        (u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))),
      ) ?? false
    );
  }
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const rs = (rule.resources ?? []) as string[];
  if (!(rs.includes('*') || rs.includes(res) || (a.subresource && rs.includes(`*/${a.subresource}`)))) return false;
  const names = (rule.resourceNames ?? []) as string[];
  if (names.length && !names.includes(a.name)) return false;
  return true;
}

/**
 * Every rule that applies to a user: the bootstrap roles of its groups, its cluster role
 * bindings' roles, and (for a namespace) its role bindings' roles there, in RBAC's order.
 */
export function rulesFor(store: Store, user: User, namespace: string): Obj[] {
  const rolesFor = (kind: string, name: string, ns: string | undefined): Obj[] => {
    const r =
      kind === 'Role'
        ? store.peek('rbac.authorization.k8s.io/roles', ns, name)
        : store.peek('rbac.authorization.k8s.io/clusterroles', undefined, name);
    return (r?.rules ?? []) as Obj[];
  };
  const out: Obj[] = BOOTSTRAP_RULES.filter((b) => b.groups.some((g) => user.groups.includes(g))).flatMap((b) => b.rules);
  for (const b of store.list('rbac.authorization.k8s.io/clusterrolebindings'))
    if ((b.subjects ?? []).some((s: Obj) => subjectMatches(s, user, undefined)))
      out.push(...rolesFor('ClusterRole', b.roleRef?.name, undefined));
  if (namespace)
    for (const b of store.list('rbac.authorization.k8s.io/rolebindings', namespace))
      if ((b.subjects ?? []).some((s: Obj) => subjectMatches(s, user, namespace)))
        out.push(...rolesFor(b.roleRef?.kind, b.roleRef?.name, namespace));
  return out;
}

/** RBAC as kube-apiserver evaluates it (with the bootstrap roles). */
export function authorize(store: Store, user: User, a: Attributes): boolean {
  return rulesFor(store, user, a.resourceRequest ? a.namespace : '').some((r) => ruleAllows(r, a));
}

export function forbiddenError(user: User, a: Attributes): ApiError {
  if (!a.resourceRequest) {
    return new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" cannot ${a.verb} path "${a.path}"`, {});
  }
  const qr = a.apiGroup ? `${a.resource}.${a.apiGroup}` : a.resource;
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : 'at the cluster scope';
  return new ApiError(
    403,
    'Forbidden',
    `${qr}${a.name ? ` "${a.name}"` : ''} is forbidden: User "${user.name}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}" ${scope}`,
    { ...(a.name ? { name: a.name } : {}), ...(a.apiGroup ? { group: a.apiGroup } : {}), kind: a.resource },
  );
}
