/**
 * `AssumeRoleWithWebIdentity` (STS API version 2011-06-15) as AWS answers it, checked in this
 * order:
 *
 * 1. parameters — `RoleArn` (20–2048 characters), `RoleSessionName` (2–64 of `[\w+=,.@-]`),
 *    `WebIdentityToken` (4–20000), `DurationSeconds` (900–43200, default 3600): 400
 *    `ValidationError` with AWS's "1 validation error detected: …" wording;
 * 2. the token — a JWT, else 400 `InvalidIdentityToken`; its `iss` a registered provider ("No
 *    OpenIDConnect provider found in your account for …"); an `aud` ("Missing a required claim:
 *    aud") among the provider's client ids ("Incorrect token audience"); a signature that
 *    verifies with the issuer's published key ("Couldn't retrieve verification key from your
 *    identity provider…" when the key cannot be had); `exp` in the future, else 400
 *    `ExpiredTokenException` ("Token expired: current date/time … must be before the
 *    expiration date/time …"); `nbf`, if any, past;
 * 3. the role — it exists and its trust admits the token's issuer, `sub` and `aud`, else 403
 *    `AccessDenied` "Not authorized to perform sts:AssumeRoleWithWebIdentity"; a
 *    `DurationSeconds` above the role's `maxSessionDuration` is 400 `ValidationError`.
 *
 * The answer: `Credentials` (`AccessKeyId` `ASIA…`, `SecretAccessKey`, `SessionToken` — the
 * session sealed for S3, `sessionToken.ts` —, `Expiration`), `SubjectFromWebIdentityToken`
 * (`sub`), `AssumedRoleUser` (`arn:aws:sts::<account>:assumed-role/<role>/<session>` and
 * `<role id>:<session>`), `Provider` (`iss`, as AWS documents it for OIDC tokens) and `Audience`.
 * Session policies (`Policy`, `PolicyArns`) are taken and have no effect: there are no
 * permissions to narrow.
 */
import { randomUUID } from 'node:crypto';
import { escapeXml } from '../awsQuery.js';
import type { StsAccount } from './account.js';
import { decodeJwt, signatureValid, type IssuerKeys } from './oidc.js';
import { newSecretAccessKey, newTemporaryAccessKeyId, sealSession } from './sessionToken.js';

export const NAMESPACE = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** An error STS answers with: code, HTTP status, message; `Sender` faults unless said otherwise. */
export class StsError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly type: 'Sender' | 'Receiver' = 'Sender',
  ) {
    super(message);
  }
}

export function errorXml(e: StsError): string {
  return (
    `<ErrorResponse xmlns="${NAMESPACE}"><Error><Type>${e.type}</Type><Code>${escapeXml(e.code)}</Code>` +
    `<Message>${escapeXml(e.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`
  );
}

export interface AssumeContext {
  account: StsAccount;
  keys: IssuerKeys;
  /** the key session tokens are sealed with */
  sessionKey: Buffer;
  /** the shortest DurationSeconds taken (AWS: 900) */
  minDurationSeconds: number;
  now: () => number;
}

const validation = (field: string, value: string | undefined, constraint: string): StsError =>
  new StsError(
    'ValidationError',
    400,
    `1 validation error detected: Value ${value === undefined ? 'null' : `'${value}'`} at '${field}' failed to satisfy constraint: ${constraint}`,
  );
const invalidToken = (message: string): StsError => new StsError('InvalidIdentityToken', 400, message);
const accessDenied = (): StsError => new StsError('AccessDenied', 403, 'Not authorized to perform sts:AssumeRoleWithWebIdentity');

interface Request {
  roleArn: string;
  sessionName: string;
  token: string;
  durationSeconds: number;
}

function parameters(params: Map<string, string>, minDuration: number): Request {
  const text = (name: string, field: string, min: number, max: number, pattern?: RegExp): string => {
    const v = params.get(name);
    if (v === undefined) throw validation(field, v, 'Member must not be null');
    if (v.length < min) throw validation(field, v, `Member must have length greater than or equal to ${min}`);
    if (v.length > max) throw validation(field, v, `Member must have length less than or equal to ${max}`);
    if (pattern && !pattern.test(v)) throw validation(field, v, `Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    return v;
  };
  const roleArn = text('RoleArn', 'roleArn', 20, 2048);
  const sessionName = text('RoleSessionName', 'roleSessionName', 2, 64, /^[\w+=,.@-]*$/);
  const token = text('WebIdentityToken', 'webIdentityToken', 4, 20000);
  const raw = params.get('DurationSeconds');
  const durationSeconds = raw === undefined ? 3600 : Number(raw);
  if (!Number.isInteger(durationSeconds)) throw validation('durationSeconds', raw, 'Member must be an integer');
  if (durationSeconds < minDuration)
    throw validation('durationSeconds', raw, `Member must have value greater than or equal to ${minDuration}`);
  if (durationSeconds > 43200) throw validation('durationSeconds', raw, 'Member must have value less than or equal to 43200');
  return { roleArn, sessionName, token, durationSeconds };
}

/** The token's issuer, subject and audiences, once its signature, audience and times are checked. */
async function verifiedToken(token: string, ctx: AssumeContext): Promise<{ iss: string; sub: string; aud: string[]; audience: string }> {
  const jwt = decodeJwt(token);
  if (jwt === undefined)
    throw invalidToken('The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)');
  const { iss, sub, aud, exp, nbf } = jwt.claims;
  if (typeof iss !== 'string') throw invalidToken('Missing a required claim: iss');
  const provider = ctx.account.provider(iss);
  if (provider === undefined) throw invalidToken(`No OpenIDConnect provider found in your account for ${iss}`);
  const audiences = (Array.isArray(aud) ? aud : aud === undefined ? [] : [aud]).filter((a): a is string => typeof a === 'string');
  if (audiences.length === 0) throw invalidToken('Missing a required claim: aud');
  const audience = audiences.find((a) => provider.clientIds.includes(a));
  if (audience === undefined) throw invalidToken('Incorrect token audience');
  const key = await ctx.keys.key(provider, typeof jwt.header.kid === 'string' ? jwt.header.kid : undefined).catch(() => undefined);
  if (key === undefined)
    throw invalidToken(
      "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
    );
  if (!signatureValid(jwt, key)) throw invalidToken('The signature of the web identity token could not be verified');
  const now = Math.floor(ctx.now() / 1000);
  if (typeof exp !== 'number') throw invalidToken('Missing a required claim: exp');
  if (exp <= now)
    throw new StsError(
      'ExpiredTokenException',
      400,
      `Token expired: current date/time ${now} must be before the expiration date/time ${exp}`,
    );
  if (typeof nbf === 'number' && nbf > now)
    throw invalidToken(`Token is not yet valid: current date/time ${now} must be after the not-before date/time ${nbf}`);
  if (typeof sub !== 'string') throw invalidToken('Missing a required claim: sub');
  return { iss, sub, aud: audiences, audience };
}

function resultXml(
  issued: { accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration: number },
  who: { sub: string; iss: string; audience: string; assumedRoleArn: string; assumedRoleId: string },
): string {
  const expiration = new Date(issued.expiration).toISOString().replace(/\.\d+Z$/, 'Z');
  return (
    `<AssumeRoleWithWebIdentityResponse xmlns="${NAMESPACE}"><AssumeRoleWithWebIdentityResult>` +
    `<SubjectFromWebIdentityToken>${escapeXml(who.sub)}</SubjectFromWebIdentityToken>` +
    `<Audience>${escapeXml(who.audience)}</Audience>` +
    `<AssumedRoleUser><Arn>${escapeXml(who.assumedRoleArn)}</Arn><AssumedRoleId>${escapeXml(who.assumedRoleId)}</AssumedRoleId></AssumedRoleUser>` +
    `<Credentials><SessionToken>${issued.sessionToken}</SessionToken><SecretAccessKey>${escapeXml(issued.secretAccessKey)}</SecretAccessKey>` +
    `<Expiration>${expiration}</Expiration><AccessKeyId>${issued.accessKeyId}</AccessKeyId></Credentials>` +
    `<Provider>${escapeXml(who.iss)}</Provider></AssumeRoleWithWebIdentityResult>` +
    `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`
  );
}

/** Runs the action: the answer's XML, or throws the StsError AWS would send. */
export async function assumeRoleWithWebIdentity(params: Map<string, string>, ctx: AssumeContext): Promise<string> {
  const r = parameters(params, ctx.minDurationSeconds);
  const token = await verifiedToken(r.token, ctx);
  const role = ctx.account.trustingRole(r.roleArn, token);
  if (role === undefined) throw accessDenied();
  if (r.durationSeconds > role.maxSessionDuration)
    throw new StsError('ValidationError', 400, 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  const assumedRoleArn = `arn:aws:sts::${ctx.account.accountId}:assumed-role/${role.roleName}/${r.sessionName}`;
  const session = {
    accessKeyId: newTemporaryAccessKeyId(),
    secretAccessKey: newSecretAccessKey(),
    expiration: ctx.now() + r.durationSeconds * 1000,
    assumedRoleArn,
  };
  return resultXml(
    { ...session, sessionToken: sealSession(ctx.sessionKey, session) },
    { sub: token.sub, iss: token.iss, audience: token.audience, assumedRoleArn, assumedRoleId: `${role.roleId}:${r.sessionName}` },
  );
}
