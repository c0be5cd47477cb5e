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
  /** the request path as the URL carries it (already percent-encoded), `/` for SimpleDB */
  path: string;
  /** all parameters but `Signature` */
  params: Record<string, string>;
}

/** RFC 3986 percent-encoding, as SigV2 wants it. */
export function sigV2Encode(s: string): string {
  // encodeURIComponent leaves !'()* alone; SigV2 encodes them
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The encoded parameters sorted by encoded name (byte order) and joined with `&`. */
export function canonicalQueryString(params: Record<string, string>): string {
  const pairs = Object.entries(params).map(([k, v]) => [sigV2Encode(k), sigV2Encode(v)] as const);
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export function stringToSign(input: StringToSignInput): string {
  return [input.method, input.host.toLowerCase(), input.path || '/', canonicalQueryString(input.params)].join('\n');
}

/** base64(HMAC-SHA256(secret, stringToSign)). */
export function sigV2Signature(secretAccessKey: string, toSign: string): string {
  return createHmac('sha256', secretAccessKey).update(toSign, 'utf8').digest('base64');
}

/** ISO 8601 in UTC to the second, as AWS writes timestamps: `2011-10-03T15:19:30Z`. */
export function sigV2Timestamp(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The parameters of a signed request: `params` plus `AWSAccessKeyId`, `SignatureVersion`,
 * `SignatureMethod`, `Timestamp` (from `now`), `SecurityToken` (with a session token) and
 * `Signature`. The host is the endpoint's (with its port when not the scheme's default, as the
 * Host header carries it).
 */
export function signV2(args: {
  method: 'GET' | 'POST';
  endpoint: URL;
  params: Record<string, string>;
  credentials: SigV2Credentials;
  now: Date;
}): Record<string, string> {
  const { credentials: c } = args;
  const params: Record<string, string> = {
    ...args.params,
    AWSAccessKeyId: c.accessKeyId,
    SignatureVersion: '2',
    SignatureMethod: 'HmacSHA256',
    Timestamp: sigV2Timestamp(args.now),
    ...(c.sessionToken ? { SecurityToken: c.sessionToken } : {}),
  };
  const toSign = stringToSign({ method: args.method, host: args.endpoint.host, path: args.endpoint.pathname || '/', params });
  return { ...params, Signature: sigV2Signature(c.secretAccessKey, toSign) };
}
