/**
 * Who the test S3 server lets in, and how it refuses the others, as S3 does:
 *
 * - no authorization: anonymous, left to s3rver (as before);
 * - Signature Version 2 (`Authorization: AWS …`): left to s3rver, which checks it against its
 *   static key;
 * - Signature Version 4 (header or presigned URL), checked here (`sigv4.ts`), with
 *   - a static key (s3rver's `S3RVER`/`S3RVER`): no session token may come with it (400
 *     `InvalidToken`);
 *   - a temporary key (`ASIA…`) from the test STS this server trusts: the request must carry
 *     the session token issued with it (without one the key is unknown: 403
 *     `InvalidAccessKeyId`); a token that does not open under the STS's key, or belongs to
 *     another key, is 400 `InvalidToken`; after the session's expiry, 400 `ExpiredToken` (the
 *     SDK then fetches new credentials);
 *   - any other key: 403 `InvalidAccessKeyId`;
 *   then the request time (403 `RequestTimeTooSkewed`, presigned URLs 403 `AccessDenied` once
 *   expired) and the signature (403 `SignatureDoesNotMatch`).
 *
 * Runs in the S3 server's child process (Node strips the types): imports name .ts files.
 */
import { openSession } from '../sts/sessionToken.ts';
import { checkSignature, checkTime, parseSigV4, type S3AuthError, type SignedRequest, type SigV4Auth } from './sigv4.ts';

export { withoutQueryAuth } from './sigv4.ts';

/** The keys a server accepts: static ones (id → secret) and, with an STS's key, the sessions it seals. */
export interface KeyRing {
  staticKeys: ReadonlyMap<string, string>;
  sessionKey?: Buffer;
}

export type AuthOutcome =
  | { kind: 'anonymous' }
  | { kind: 'signatureV2' }
  | { kind: 'verified'; accessKeyId: string; temporary: boolean; form: SigV4Auth['form'] }
  | { kind: 'refused'; error: S3AuthError };

const unknownKey = (accessKeyId: string): S3AuthError => ({
  status: 403,
  code: 'InvalidAccessKeyId',
  message: 'The AWS Access Key Id you provided does not exist in our records.',
  details: { AWSAccessKeyId: accessKeyId },
});
const invalidToken: S3AuthError = { status: 400, code: 'InvalidToken', message: 'The provided token is malformed or otherwise invalid.' };
const expiredToken: S3AuthError = { status: 400, code: 'ExpiredToken', message: 'The provided token has expired.' };

/** The secret of the request's key, or why the key (with its token) is not accepted now. */
function secretFor(auth: SigV4Auth, keys: KeyRing, now: number): { secret: string; temporary: boolean } | S3AuthError {
  const staticSecret = keys.staticKeys.get(auth.accessKeyId);
  if (staticSecret !== undefined) return auth.securityToken === undefined ? { secret: staticSecret, temporary: false } : invalidToken;
  if (auth.securityToken === undefined) return unknownKey(auth.accessKeyId);
  const session = keys.sessionKey ? openSession(keys.sessionKey, auth.securityToken) : undefined;
  if (session === undefined || session.accessKeyId !== auth.accessKeyId) return invalidToken;
  if (now >= session.expiration) return expiredToken;
  return { secret: session.secretAccessKey, temporary: true };
}

export function authenticate(req: SignedRequest, keys: KeyRing, now: number): AuthOutcome {
  const auth = parseSigV4(req);
  if (auth === undefined) {
    const authorization = req.rawHeaders.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'authorization');
    return authorization >= 0 || /[?&]Signature=/.test(req.url) ? { kind: 'signatureV2' } : { kind: 'anonymous' };
  }
  if ('code' in auth) return { kind: 'refused', error: auth };
  const key = secretFor(auth, keys, now);
  if ('code' in key) return { kind: 'refused', error: key };
  const refusal = checkTime(auth, now) ?? checkSignature(req, auth, key.secret);
  if (refusal) return { kind: 'refused', error: refusal };
  return { kind: 'verified', accessKeyId: auth.accessKeyId, temporary: key.temporary, form: auth.form };
}
