/**
 * The IAM side of the test STS: one account's OpenID Connect providers and the roles that trust
 * them, as `aws iam create-open-id-connect-provider` and `aws iam create-role` make them.
 *
 * - A provider is its issuer URL (https, as IAM requires), the client ids (audiences) it accepts
 *   — `sts.amazonaws.com` for EKS — and, in place of IAM's certificate thumbprints, the CA its
 *   discovery server's certificate chains to. Its ARN is
 *   `arn:aws:iam::<account>:oidc-provider/<URL without https://>`.
 * - A role trusts one provider (`"Principal": {"Federated": <provider ARN>}`, action
 *   `sts:AssumeRoleWithWebIdentity`) under two conditions, those of an EKS IRSA trust policy:
 *   `StringLike` on `<provider>:sub` (`*` and `?` wildcards; e.g.
 *   `system:serviceaccount:toil:toil-leader`) and, when given, `StringEquals` on
 *   `<provider>:aud`. Its `maxSessionDuration` (IAM: 3600 s by default, at most 43200) bounds
 *   the sessions it gives. Its id is `AROA` + 17 characters, as IAM's.
 *
 * There are no permission policies: a session may do anything on the test S3 server.
 */
import { randomInt } from 'node:crypto';

export interface OpenIdConnectProvider {
  /** the issuer URL, as tokens name it in `iss` */
  url: string;
  /** the audiences (`aud`) accepted; IAM's client id list */
  clientIds: string[];
  /** PEM of the CA that the issuer's HTTPS certificate chains to (default: the system's CAs) */
  caPem?: string;
}

export interface WebIdentityRole {
  roleName: string;
  /** the URL of the provider it trusts */
  provider: string;
  /** `StringLike` condition on `<provider>:sub` */
  subject: string;
  /** `StringEquals` condition on `<provider>:aud`, if any */
  audience?: string;
  /** seconds, 3600 (default) to 43200 */
  maxSessionDuration?: number;
}

export interface Role extends WebIdentityRole {
  arn: string;
  roleId: string;
  maxSessionDuration: number;
}

/** IAM's StringLike: `*` any run of characters, `?` any one, case-sensitive, the whole value. */
export function stringLike(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  return new RegExp(`^${re}$`, 's').test(value);
}

export class StsAccount {
  private readonly providers = new Map<string, OpenIdConnectProvider & { arn: string }>();
  private readonly roles = new Map<string, Role>();

  constructor(readonly accountId: string) {}

  createOpenIdConnectProvider(p: OpenIdConnectProvider): string {
    if (!/^https:\/\/[^/?#]+/.test(p.url)) throw new Error(`an OpenID Connect provider URL must begin with https://, not '${p.url}'`);
    if (p.clientIds.length === 0) throw new Error('an OpenID Connect provider needs at least one client id (audience)');
    const arn = `arn:aws:iam::${this.accountId}:oidc-provider/${p.url.replace(/^https:\/\//, '')}`;
    this.providers.set(p.url, { ...p, arn });
    return arn;
  }

  createRole(r: WebIdentityRole): Role {
    if (!/^[\w+=,.@-]{1,64}$/.test(r.roleName)) throw new Error(`'${r.roleName}' is not a valid role name`);
    if (!this.providers.has(r.provider)) throw new Error(`no OpenID Connect provider ${r.provider}: create it first`);
    const maxSessionDuration = r.maxSessionDuration ?? 3600;
    if (!(maxSessionDuration >= 3600 && maxSessionDuration <= 43200))
      throw new Error(`maxSessionDuration must be 3600 to 43200 seconds, not ${maxSessionDuration}`);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    const roleId = `AROA${Array.from({ length: 17 }, () => alphabet[randomInt(alphabet.length)]).join('')}`;
    const role: Role = { ...r, maxSessionDuration, arn: `arn:aws:iam::${this.accountId}:role/${r.roleName}`, roleId };
    this.roles.set(role.arn, role);
    return role;
  }

  provider(issuer: string): (OpenIdConnectProvider & { arn: string }) | undefined {
    return this.providers.get(issuer);
  }

  /** The role, if it exists and its trust policy lets this token's issuer, subject and audience assume it. */
  trustingRole(roleArn: string, token: { iss: string; sub: string; aud: string[] }): Role | undefined {
    const role = this.roles.get(roleArn);
    if (role === undefined || role.provider !== token.iss || !stringLike(role.subject, token.sub)) return undefined;
    if (role.audience !== undefined && !token.aud.includes(role.audience)) return undefined;
    return role;
  }
}
