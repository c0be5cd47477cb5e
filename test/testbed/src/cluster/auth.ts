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

const PUBLIC_PATHS = ['/healthz', '/livez', '/readyz', '/version', '/version/'];
const DISCOVERY_PREFIXES = ['/api', '/apis', '/openapi', '/version', '/healthz', '/livez', '/readyz'];

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

/** RBAC as kube-apiserver evaluates it (plus the bootstrap discovery/basic-user roles). */
export function authorize(store: Store, user: User, a: Attributes): boolean {
  if (user.groups.includes('system:masters')) return true;
  if (!a.resourceRequest) {
    if (a.verb === 'get' && PUBLIC_PATHS.includes(a.path)) return true;
    if (
      user.groups.includes('system:authenticated') &&
      a.verb === 'get' &&
      DISCOVERY_PREFIXES.some((p) => a.path === p || a.path.startsWith(`${p}/`))
    )
      return true;
  }
  if (
    user.groups.includes('system:authenticated') &&
    a.resourceRequest &&
    a.verb === 'create' &&
    ['selfsubjectaccessreviews', 'selfsubjectrulesreviews', 'selfsubjectreviews'].includes(a.resource)
  )
    return true;
  const rolesFor = (kind: string, name: string, ns: string | undefined): Obj[] => {
    const r =
      kind === 'Role'
        ? store.peek('rbac.authorization.k8s.io/roles', ns, name)
        : store.peek('rbac.authorization.k8s.io/clusterroles', undefined, name);
    return (r?.rules ?? []) as Obj[];
  };
  for (const b of store.list('rbac.authorization.k8s.io/clusterrolebindings')) {
    if (!(b.subjects ?? []).some((s: Obj) => subjectMatches(s, user, undefined))) continue;
    if (rolesFor('ClusterRole', b.roleRef?.name, undefined).some((r) => ruleAllows(r, a))) return true;
  }
  if (a.namespace && a.resourceRequest) {
    for (const b of store.list('rbac.authorization.k8s.io/rolebindings', a.namespace)) {
      if (!(b.subjects ?? []).some((s: Obj) => subjectMatches(s, user, a.namespace))) continue;
      if (rolesFor(b.roleRef?.kind, b.roleRef?.name, a.namespace).some((r) => ruleAllows(r, a))) return true;
    }
  }
  return false;
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
