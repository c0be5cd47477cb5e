/**
 * Checking a request's Signature Version 2, as SimpleDB does (written independently of the
 * engine's signer, so that the two check each other):
 *
 * - `AWSAccessKeyId` names a known key (else 403 AuthFailure; missing: 403 AuthMissingFailure);
 *   a key issued with a session token needs that token as `SecurityToken`, and a key without
 *   one takes no token (403 InvalidClientTokenId);
 * - `SignatureVersion` is 2 and `SignatureMethod` HmacSHA256 (else 400 InvalidParameterValue);
 * - `Timestamp` is within 15 minutes of the server's clock, or `Expires` is still ahead of it
 *   (else 400 RequestExpired); exactly one of them is given (else MissingParameter or
 *   InvalidParameterCombination);
 * - `Signature` is base64(HMAC-SHA256(secret, METHOD\nhost\npath\ncanonical query)) over all other
 *   parameters (else 403 SignatureDoesNotMatch).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { sdbError } from './xml.js';

export interface TestCredential {
  accessKeyId: string;
  secretAccessKey: string;
  /** when set, requests with this key must carry it as SecurityToken */
  sessionToken?: string;
}

const SKEW_MS = 15 * 60 * 1000;

function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonical(params: Map<string, string>): string {
  return [...params]
    .filter(([k]) => k !== 'Signature')
    .map(([k, v]) => [rfc3986(k), rfc3986(v)])
    .sort(([a], [b]) => Buffer.compare(Buffer.from(a!), Buffer.from(b!)))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function checkTime(params: Map<string, string>, now: number): void {
  const ts = params.get('Timestamp');
  const exp = params.get('Expires');
  if (ts !== undefined && exp !== undefined)
    throw sdbError('InvalidParameterCombination', 'The parameter Timestamp cannot be used with the parameter Expires');
  if (ts === undefined && exp === undefined)
    throw sdbError('MissingParameter', 'The request must contain the parameter Timestamp or Expires');
  const raw = (ts ?? exp)!;
  // a time without a zone is UTC, not the server's local time
  const when = Date.parse(/T[\d:.]+$/.test(raw) ? `${raw}Z` : raw);
  if (Number.isNaN(when))
    throw sdbError('InvalidParameterValue', `Value (${ts ?? exp}) for parameter ${ts ? 'Timestamp' : 'Expires'} is invalid.`);
  const expired = ts !== undefined ? Math.abs(now - when) > SKEW_MS : now > when;
  if (expired) throw sdbError('RequestExpired', `Request has expired. ${ts !== undefined ? 'Timestamp' : 'Expires'} date is ${ts ?? exp}`);
}

function checkKey(params: Map<string, string>, keys: readonly TestCredential[]): TestCredential {
  const id = params.get('AWSAccessKeyId');
  if (!id || !params.get('Signature'))
    throw sdbError('AuthMissingFailure', 'AWS was not able to authenticate the request: access credentials are missing.');
  const cred = keys.find((k) => k.accessKeyId === id);
  if (cred === undefined) throw sdbError('AuthFailure', 'AWS was not able to validate the provided access credentials.');
  if ((cred.sessionToken ?? '') !== (params.get('SecurityToken') ?? ''))
    throw sdbError('InvalidClientTokenId', 'The security token included in the request is invalid.');
  return cred;
}

/** Throws the SdbError AWS would answer with if the request's authentication does not hold. */
export function verifySigV2(req: {
  method: string;
  host: string;
  path: string;
  params: Map<string, string>;
  keys: readonly TestCredential[];
  now: number;
}): void {
  const { params } = req;
  const cred = checkKey(params, req.keys);
  if (params.get('SignatureVersion') !== '2')
    throw sdbError(
      'InvalidParameterValue',
      `Value (${params.get('SignatureVersion') ?? ''}) for parameter SignatureVersion is invalid. Valid Signature versions are 2.`,
    );
  if (params.get('SignatureMethod') !== 'HmacSHA256')
    throw sdbError('InvalidParameterValue', `Value (${params.get('SignatureMethod') ?? ''}) for parameter SignatureMethod is invalid.`);
  checkTime(params, req.now);
  const toSign = `${req.method}\n${req.host.toLowerCase()}\n${req.path || '/'}\n${canonical(params)}`;
  const expected = createHmac('sha256', cred.secretAccessKey).update(toSign, 'utf8').digest();
  const given = Buffer.from(params.get('Signature')!, 'base64');
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    throw sdbError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
}
