/**
 * AWS Signature Version 2 (HmacSHA256), the only signing SimpleDB accepts. Pure functions: no
 * clock, no network.
 *
 * The rules, as AWS documents them for the Query API:
 * - every parameter (except `Signature`) is percent-encoded per RFC 3986 — unreserved characters
 *   `A-Z a-z 0-9 - _ . ~` stay, everything else (space as `%20`, never `+`) becomes `%XY` of its
 *   UTF-8 bytes, hex digits upper case;
 * - the canonical query string is the encoded `name=value` pairs sorted by encoded name (byte
 *   order), joined with `&`;
 * - the string to sign is `METHOD \n host (lower case) \n path \n canonical query string`;
 * - the signature is base64(HMAC-SHA256(secret key, string to sign));
 * - the request carries `AWSAccessKeyId`, `SignatureVersion=2`, `SignatureMethod=HmacSHA256`,
 *   a `Timestamp` (ISO 8601, UTC) or an `Expires`, and with temporary credentials the session
 *   token as `SecurityToken`.
 */
import { createHmac } from 'node:crypto';

export interface SigV2Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface StringToSignInput {
  method: 'GET' | 'POST';
  /** the Host header's value: host name, and `:port` when not the scheme's default */
  host: string;
  /** the request path, `/` for SimpleDB */
  path: string;
  /** all parameters but `Signature` */
  params: Record<string, string>;
}

/** RFC 3986 percent-encoding, as SigV2 wants it. */
export function sigV2Encode(s: string): string {
  throw new Error(`not implemented ${s}`);
}

/** The encoded parameters sorted by name and joined with `&`. */
export function canonicalQueryString(params: Record<string, string>): string {
  throw new Error(`not implemented ${Object.keys(params).length}`);
}

export function stringToSign(input: StringToSignInput): string {
  throw new Error(`not implemented ${input.method}`);
}

/** base64(HMAC-SHA256(secret, stringToSign)). */
export function sigV2Signature(secretAccessKey: string, toSign: string): string {
  return createHmac('sha256', secretAccessKey).update(toSign, 'utf8').digest('base64');
}

/**
 * The parameters of a signed request: `params` plus the authentication parameters, the
 * `Timestamp` (from `now`) and `Signature`.
 */
export function signV2(args: {
  method: 'GET' | 'POST';
  endpoint: URL;
  params: Record<string, string>;
  credentials: SigV2Credentials;
  now: Date;
}): Record<string, string> {
  throw new Error(`not implemented ${args.method}`);
}
