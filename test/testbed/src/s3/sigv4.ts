/**
 * Signature Version 4 as S3 checks it, in both forms: the `Authorization: AWS4-HMAC-SHA256 …`
 * header and the presigned query string (`X-Amz-Algorithm`, `X-Amz-Credential`, …). Written
 * from AWS's description of the algorithm, apart from the SDK's signer, so each checks the other
 * (`test/sigv4.test.ts` signs with the SDK's and verifies here).
 *
 * - Canonical request: method; the path with each segment decoded and encoded again as RFC 3986
 *   (S3 does not normalise `.` or `//`); the query parameters (the signature's own excepted)
 *   decoded, encoded again and sorted; the signed headers, lower-cased, values trimmed with
 *   inner runs of spaces made one and repeated headers joined by `,`; the signed-header list; the
 *   payload hash — `x-amz-content-sha256` as sent (a hex SHA-256, `UNSIGNED-PAYLOAD`, or one of
 *   the `STREAMING-…` values of aws-chunked uploads, whose seed signature is this one), and
 *   `UNSIGNED-PAYLOAD` for a presigned URL unless it names one.
 * - String to sign `AWS4-HMAC-SHA256\n<X-Amz-Date>\n<date>/<region>/<service>/aws4_request\n<hex
 *   SHA-256 of the canonical request>`, signed with the key derived from `AWS4<secret>`, the
 *   date, region, service and `aws4_request`.
 * - Errors as S3 answers them: a malformed header or query 400 `AuthorizationHeaderMalformed` /
 *   `AuthorizationQueryParametersError`, a missing `x-amz-content-sha256` 400 `InvalidRequest`, a
 *   clock more than 15 minutes off 403 `RequestTimeTooSkewed`, an expired presigned URL 403
 *   `AccessDenied`, a wrong signature 403 `SignatureDoesNotMatch` (with the string to sign and the
 *   canonical request, as S3 gives them), an `x-amz-*` header left out of the signature 403
 *   `AccessDenied` (`HeadersNotSigned`).
 *
 * Not checked: the region (the test server has no bucket regions; any is taken), the body
 * against a declared SHA-256 (S3's `XAmzContentSHA256Mismatch`), and the chunk signatures of
 * aws-chunked bodies (the body is stored as sent).
 *
 * Runs in the S3 server's child process (Node strips the types): node: imports only.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** A request as it arrived: method, target (path and query as sent), headers as received. */
export interface SignedRequest {
  method: string;
  url: string;
  /** name, value, name, value… (IncomingMessage.rawHeaders) */
  rawHeaders: readonly string[];
}

/** An error S3 answers an authentication failure with. */
export interface S3AuthError {
  status: number;
  code: string;
  message: string;
  /** further elements of the error document, in order */
  details?: Record<string, string>;
}

/** What a request's SigV4 authorization says. */
export interface SigV4Auth {
  form: 'header' | 'query';
  accessKeyId: string;
  scope: { date: string; region: string; service: string };
  /** `yyyyMMddTHHmmssZ` */
  amzDate: string;
  signedHeaders: string[];
  signature: string;
  payloadHash: string;
  /** the session token the request carries (`x-amz-security-token`, `X-Amz-Security-Token`) */
  securityToken?: string;
  /** a presigned URL's lifetime (`X-Amz-Expires`) */
  expiresSeconds?: number;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGNED_SECONDS = 604_800;
/** The query parameters of a presigned URL's authorization. */
export const QUERY_AUTH_PARAMS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Security-Token',
];
const PAYLOAD_HASH =
  /^(UNSIGNED-PAYLOAD|STREAMING-(UNSIGNED-PAYLOAD-TRAILER|AWS4-HMAC-SHA256-PAYLOAD(-TRAILER)?|AWS4-ECDSA-P256-SHA256-PAYLOAD(-TRAILER)?)|[0-9a-f]{64})$/;

const authError = (status: number, code: string, message: string, details?: Record<string, string>): S3AuthError => ({
  status,
  code,
  message,
  ...(details ? { details } : {}),
});

/** RFC 3986 encoding: everything but unreserved characters as %XX. */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function uriDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function splitTarget(url: string): { path: string; query: [string, string][] } {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = (q < 0 ? '' : url.slice(q + 1))
    .split('&')
    .filter((p) => p !== '')
    .map((p): [string, string] => {
      const eq = p.indexOf('=');
      return eq < 0 ? [uriDecode(p), ''] : [uriDecode(p.slice(0, eq)), uriDecode(p.slice(eq + 1))];
    });
  return { path, query };
}

/** Header values by lower-case name, in the order received. */
export function headerMap(rawHeaders: readonly string[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    m.set(name, [...(m.get(name) ?? []), rawHeaders[i + 1]!]);
  }
  return m;
}

const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** The canonical request S3 computes for this request and authorization. */
export function canonicalRequest(req: SignedRequest, auth: SigV4Auth): string {
  const { path, query } = splitTarget(req.url);
  const canonicalPath = path
    .split('/')
    .map((seg) => uriEncode(uriDecode(seg)))
    .join('/');
  const canonicalQuery = query
    .filter(([k]) => !(auth.form === 'query' && k === 'X-Amz-Signature'))
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const headers = headerMap(req.rawHeaders);
  const canonicalHeaders = auth.signedHeaders
    .map((h) => `${h}:${(headers.get(h) ?? []).map((v) => v.trim().replace(/ +/g, ' ')).join(',')}\n`)
    .join('');
  return [req.method, canonicalPath, canonicalQuery, canonicalHeaders, auth.signedHeaders.join(';'), auth.payloadHash].join('\n');
}

export function stringToSign(auth: SigV4Auth, canonical: string): string {
  const { date, region, service } = auth.scope;
  return [ALGORITHM, auth.amzDate, `${date}/${region}/${service}/aws4_request`, sha256Hex(canonical)].join('\n');
}

export function signature(secretAccessKey: string, auth: SigV4Auth, toSign: string): string {
  const { date, region, service } = auth.scope;
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  return createHmac('sha256', key).update(toSign, 'utf8').digest('hex');
}

/** `yyyyMMddTHHmmssZ` → epoch ms (NaN when it is not one). */
function parseAmzDate(s: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

const toAmzDate = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** Credential `<key>/<date>/<region>/<service>/aws4_request`: the parts, or the reason it is not one. */
function parseCredential(credential: string, amzDate: string): { accessKeyId: string; scope: SigV4Auth['scope'] } | string {
  const parts = credential.split('/');
  if (parts.length !== 5 || parts.some((p) => p === ''))
    return `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`;
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (terminator !== 'aws4_request') return `incorrect terminal "${terminator}". This endpoint uses "aws4_request".`;
  if (service !== 's3') return `incorrect service "${service}". This endpoint belongs to "s3".`;
  if (date !== amzDate.slice(0, 8))
    return `Invalid credential date "${date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`;
  return { accessKeyId, scope: { date, region, service } };
}

function parseHeaderForm(value: string, headers: Map<string, string[]>): SigV4Auth | S3AuthError {
  const malformed = (why: string): S3AuthError =>
    authError(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; ${why}`);
  const fields = new Map(
    value
      .slice(ALGORITHM.length)
      .split(',')
      .map((f) => f.trim())
      .filter((f) => f !== '')
      .map((f): [string, string] => [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)]),
  );
  for (const name of ['Credential', 'SignedHeaders', 'Signature']) if (!fields.has(name)) return malformed(`missing ${name}.`);
  const xAmzDate = headers.get('x-amz-date')?.[0];
  const dateHeader = headers.get('date')?.[0];
  const amzDate = xAmzDate ?? (dateHeader !== undefined && !isNaN(Date.parse(dateHeader)) ? toAmzDate(Date.parse(dateHeader)) : '');
  if (isNaN(parseAmzDate(amzDate))) return authError(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
  const credential = parseCredential(fields.get('Credential')!, amzDate);
  if (typeof credential === 'string') return malformed(credential);
  const payloadHash = headers.get('x-amz-content-sha256')?.[0];
  if (payloadHash === undefined) return authError(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  if (!PAYLOAD_HASH.test(payloadHash))
    return authError(
      400,
      'InvalidArgument',
      'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, a STREAMING-… value, or a valid sha256 value.',
      {
        ArgumentName: 'x-amz-content-sha256',
        ArgumentValue: payloadHash,
      },
    );
  const token = headers.get('x-amz-security-token')?.[0];
  return {
    form: 'header',
    ...credential,
    amzDate,
    signedHeaders: fields.get('SignedHeaders')!.split(';'),
    signature: fields.get('Signature')!,
    payloadHash,
    ...(token !== undefined ? { securityToken: token } : {}),
  };
}

function parseQueryForm(query: Map<string, string>): SigV4Auth | S3AuthError {
  const bad = (message: string): S3AuthError => authError(400, 'AuthorizationQueryParametersError', message);
  if (query.get('X-Amz-Algorithm') !== ALGORITHM) return bad('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  if (QUERY_AUTH_PARAMS.slice(0, 6).some((p) => !query.has(p)))
    return bad(
      'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
    );
  const amzDate = query.get('X-Amz-Date')!;
  if (isNaN(parseAmzDate(amzDate))) return bad(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  const expires = Number(query.get('X-Amz-Expires'));
  if (!Number.isInteger(expires) || expires < 0) return bad('X-Amz-Expires should be a number');
  if (expires > MAX_PRESIGNED_SECONDS) return bad('X-Amz-Expires must be less than a week (in seconds) that is 604800');
  const credential = parseCredential(query.get('X-Amz-Credential')!, amzDate);
  if (typeof credential === 'string') return bad(`Error parsing the X-Amz-Credential parameter; ${credential}`);
  const token = query.get('X-Amz-Security-Token');
  return {
    form: 'query',
    ...credential,
    amzDate,
    signedHeaders: query.get('X-Amz-SignedHeaders')!.split(';'),
    signature: query.get('X-Amz-Signature')!,
    payloadHash: query.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD',
    expiresSeconds: expires,
    ...(token !== undefined ? { securityToken: token } : {}),
  };
}

/**
 * The request's SigV4 authorization, an error for a malformed or contradictory one, or
 * undefined when it has none (anonymous, or Signature Version 2, which s3rver checks itself).
 */
export function parseSigV4(req: SignedRequest): SigV4Auth | S3AuthError | undefined {
  const headers = headerMap(req.rawHeaders);
  const authorization = headers.get('authorization')?.[0];
  const query = new Map(splitTarget(req.url).query);
  const inHeader = authorization?.startsWith(`${ALGORITHM} `) ?? false;
  const inQuery = query.has('X-Amz-Algorithm');
  if (inHeader && inQuery)
    return authError(
      400,
      'InvalidArgument',
      'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
    );
  if (inHeader) return parseHeaderForm(authorization!, headers);
  if (inQuery) return parseQueryForm(query);
  return undefined;
}

/** The request's time against `now`: a header-signed request within 15 minutes, a presigned URL not expired. */
export function checkTime(auth: SigV4Auth, now: number): S3AuthError | undefined {
  const at = parseAmzDate(auth.amzDate);
  const serverTime = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
  if (auth.form === 'header') {
    if (Math.abs(now - at) <= MAX_SKEW_MS) return undefined;
    return authError(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      RequestTime: auth.amzDate,
      ServerTime: serverTime,
      MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
    });
  }
  if (at - now > MAX_SKEW_MS) return authError(403, 'AccessDenied', 'Request is not valid yet');
  const expires = at + (auth.expiresSeconds ?? 0) * 1000;
  if (now <= expires) return undefined;
  return authError(403, 'AccessDenied', 'Request has expired', {
    'X-Amz-Expires': String(auth.expiresSeconds ?? 0),
    Expires: new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z'),
    ServerTime: serverTime,
  });
}

/** Checks the signature with the key's secret, and that every `x-amz-*` header is signed. */
export function checkSignature(req: SignedRequest, auth: SigV4Auth, secretAccessKey: string): S3AuthError | undefined {
  const canonical = canonicalRequest(req, auth);
  const toSign = stringToSign(auth, canonical);
  const expected = Buffer.from(signature(secretAccessKey, auth, toSign), 'utf8');
  const provided = Buffer.from(auth.signature, 'utf8');
  if (expected.length !== provided.length || !timingSafeEqual(expected, provided)) {
    return authError(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: auth.accessKeyId, StringToSign: toSign, SignatureProvided: auth.signature, CanonicalRequest: canonical },
    );
  }
  const unsigned = [...headerMap(req.rawHeaders).keys()].filter((h) => h.startsWith('x-amz-') && !auth.signedHeaders.includes(h));
  if (unsigned.length === 0) return undefined;
  return authError(403, 'AccessDenied', 'There were headers present in the request which were not signed', {
    HeadersNotSigned: unsigned.join(', '),
  });
}

/** The request target without a presigned URL's authorization parameters (once they are checked). */
export function withoutQueryAuth(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const kept = url
    .slice(q + 1)
    .split('&')
    .filter((p) => p !== '' && !QUERY_AUTH_PARAMS.includes(uriDecode(p.split('=')[0]!)));
  return kept.length ? `${url.slice(0, q)}?${kept.join('&')}` : url.slice(0, q);
}
