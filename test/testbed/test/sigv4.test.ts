/**
 * The test S3 server's Signature Version 4 checks against the AWS SDK's own signer: requests the
 * real S3 client sends (captured by a plain HTTP server) and URLs the SDK's signer presigns
 * verify, and any change to them — key, path, query, a signed header, the time — is refused with
 * S3's error. Then the credential rules: static key, temporary credentials and their session
 * tokens.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { authenticate, type KeyRing } from '../src/s3/credentials.ts';
import { checkSignature, checkTime, parseSigV4, withoutQueryAuth, type SignedRequest, type SigV4Auth } from '../src/s3/sigv4.ts';
import { newSessionKey, newSecretAccessKey, newTemporaryAccessKeyId, sealSession } from '../src/sts/sessionToken.ts';
import { presignGet } from './presign.js';

const KEY = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
let server: Server;
let endpoint: string;
let captured: SignedRequest[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    captured.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders });
    req.resume();
    req.on('end', () => res.writeHead(200, { ETag: '"0"', 'Content-Type': 'application/xml' }).end(''));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

/** What the SDK's S3 client sends for a command (the answer is ignored). */
async function sent(
  send: (c: S3Client) => Promise<unknown>,
  opts: { credentials?: typeof KEY & { sessionToken?: string }; checksums?: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED' } = {},
): Promise<SignedRequest> {
  captured = [];
  const client = new S3Client({
    region: 'us-west-2',
    endpoint,
    forcePathStyle: true,
    credentials: opts.credentials ?? KEY,
    maxAttempts: 1,
    requestChecksumCalculation: opts.checksums ?? 'WHEN_REQUIRED',
  });
  await send(client).catch(() => undefined);
  client.destroy();
  expect(captured).toHaveLength(1);
  return captured[0]!;
}

function parsed(req: SignedRequest): SigV4Auth {
  const auth = parseSigV4(req);
  if (auth === undefined || 'code' in auth) throw new Error(`not a valid SigV4 request: ${JSON.stringify(auth)}`);
  return auth;
}

const withHeader = (req: SignedRequest, name: string, value: string): SignedRequest => {
  const raw = [...req.rawHeaders];
  const i = raw.findIndex((h, j) => j % 2 === 0 && h.toLowerCase() === name);
  if (i >= 0) raw[i + 1] = value;
  else raw.push(name, value);
  return { ...req, rawHeaders: raw };
};

describe('requests the SDK signs', () => {
  const KEYNAME = 'dir one/ünï+cöde (1)*~!.txt';
  const cases: [string, (c: S3Client) => Promise<unknown>, 'WHEN_REQUIRED' | 'WHEN_SUPPORTED', RegExp][] = [
    [
      'a PutObject of a buffer (payload hashed)',
      (c) => c.send(new PutObjectCommand({ Bucket: 'b-1', Key: KEYNAME, Body: 'hello' })),
      'WHEN_REQUIRED',
      /^[0-9a-f]{64}$/,
    ],
    [
      'a PutObject of a stream (UNSIGNED-PAYLOAD)',
      (c) => c.send(new PutObjectCommand({ Bucket: 'b-1', Key: KEYNAME, Body: Readable.from([Buffer.from('x')]), ContentLength: 1 })),
      'WHEN_REQUIRED',
      /^UNSIGNED-PAYLOAD$/,
    ],
    [
      'an aws-chunked PutObject (the SDK default for streams)',
      (c) => c.send(new PutObjectCommand({ Bucket: 'b-1', Key: KEYNAME, Body: Readable.from([Buffer.from('x')]), ContentLength: 1 })),
      'WHEN_SUPPORTED',
      /^STREAMING-UNSIGNED-PAYLOAD-TRAILER$/,
    ],
    [
      'a ListObjectsV2 with a query',
      (c) => c.send(new ListObjectsV2Command({ Bucket: 'b-1', Prefix: 'dir one/ü', StartAfter: 'a=b&c', MaxKeys: 7 })),
      'WHEN_REQUIRED',
      /^[0-9a-f]{64}$/,
    ],
    [
      'a GetObject with response overrides',
      (c) => c.send(new GetObjectCommand({ Bucket: 'b-1', Key: KEYNAME, ResponseContentDisposition: 'attachment; filename="a b.txt"' })),
      'WHEN_REQUIRED',
      /^[0-9a-f]{64}$/,
    ],
  ];
  test.each(cases)('%s verifies, and not with another key or once changed', async (_what, send, checksums, payload) => {
    const req = await sent(send, { checksums });
    const auth = parsed(req);
    expect(auth).toMatchObject({ form: 'header', accessKeyId: 'S3RVER', scope: { region: 'us-west-2', service: 's3' } });
    expect(auth.payloadHash).toMatch(payload);
    expect(checkTime(auth, Date.now())).toBeUndefined();
    expect(checkSignature(req, auth, 'S3RVER')).toBeUndefined();
    expect(checkSignature(req, auth, 'other')?.code).toBe('SignatureDoesNotMatch');
    expect(checkSignature({ ...req, url: req.url.replace('b-1', 'b-2') }, auth, 'S3RVER')?.code).toBe('SignatureDoesNotMatch');
    expect(checkSignature({ ...req, method: 'DELETE' }, auth, 'S3RVER')?.code).toBe('SignatureDoesNotMatch');
    expect(checkSignature(withHeader(req, 'x-amz-date', '20200101T000000Z'), auth, 'S3RVER')?.code).toBe('SignatureDoesNotMatch');
    const extra = checkSignature(withHeader(req, 'x-amz-meta-extra', 'x'), auth, 'S3RVER');
    expect(extra).toMatchObject({ status: 403, code: 'AccessDenied', details: { HeadersNotSigned: 'x-amz-meta-extra' } });
  });

  test('the SignatureDoesNotMatch error carries the string to sign and the canonical request', async () => {
    const req = await sent((c) => c.send(new GetObjectCommand({ Bucket: 'b-1', Key: 'k' })));
    const err = checkSignature(req, parsed(req), 'other');
    expect(err?.status).toBe(403);
    expect(err?.details?.['StringToSign']).toMatch(/^AWS4-HMAC-SHA256\n\d{8}T\d{6}Z\n\d{8}\/us-west-2\/s3\/aws4_request\n[0-9a-f]{64}$/);
    expect(err?.details?.['CanonicalRequest']).toMatch(/^GET\n\/b-1\/k\nx-id=GetObject\n/);
  });

  test('a request signed 20 minutes ago is RequestTimeTooSkewed', async () => {
    const req = await sent((c) => c.send(new GetObjectCommand({ Bucket: 'b-1', Key: 'k' })));
    expect(checkTime(parsed(req), Date.now() + 20 * 60_000)).toMatchObject({ status: 403, code: 'RequestTimeTooSkewed' });
  });

  test('malformed authorizations are refused as S3 refuses them', async () => {
    const req = await sent((c) => c.send(new GetObjectCommand({ Bucket: 'b-1', Key: 'k' })));
    const authz = req.rawHeaders[req.rawHeaders.findIndex((h) => h.toLowerCase() === 'authorization') + 1]!;
    const without = (name: string): SignedRequest => ({
      ...req,
      rawHeaders: req.rawHeaders.filter((_h, i, a) => a[i - (i % 2)]!.toLowerCase() !== name),
    });
    expect(parseSigV4(without('x-amz-content-sha256'))).toMatchObject({ status: 400, code: 'InvalidRequest' });
    expect(parseSigV4(withHeader(req, 'authorization', authz.replace('/s3/', '/sqs/')))).toMatchObject({
      status: 400,
      code: 'AuthorizationHeaderMalformed',
    });
    expect(parseSigV4(withHeader(req, 'authorization', authz.replace(/Signature=\w+/, '')))).toMatchObject({
      code: 'AuthorizationHeaderMalformed',
    });
    expect(parseSigV4({ ...req, url: `${req.url}&X-Amz-Algorithm=AWS4-HMAC-SHA256` })).toMatchObject({ code: 'InvalidArgument' });
    expect(parseSigV4(without('authorization'))).toBeUndefined();
  });
});

describe('presigned URLs', () => {
  async function presigned(opts: { expiresIn: number; sessionToken?: string }): Promise<SignedRequest> {
    const credentials = { ...KEY, ...(opts.sessionToken ? { sessionToken: opts.sessionToken } : {}) };
    const url = new URL(await presignGet('http://127.0.0.1:9000/b-1/dir%20one/k%2Bx?x-id=GetObject', credentials, opts.expiresIn));
    return { method: 'GET', url: `${url.pathname}${url.search}`, rawHeaders: ['Host', url.host] };
  }

  test('verify while valid, not once expired, and lose their authorization when passed on', async () => {
    const req = await presigned({ expiresIn: 60 });
    const auth = parsed(req);
    expect(auth).toMatchObject({ form: 'query', accessKeyId: 'S3RVER', payloadHash: 'UNSIGNED-PAYLOAD', expiresSeconds: 60 });
    expect(checkTime(auth, Date.now())).toBeUndefined();
    expect(checkSignature(req, auth, 'S3RVER')).toBeUndefined();
    expect(checkSignature({ ...req, url: req.url.replace('k%2Bx', 'k%2By') }, auth, 'S3RVER')?.code).toBe('SignatureDoesNotMatch');
    expect(checkTime(auth, Date.now() + 61_000)).toMatchObject({ status: 403, code: 'AccessDenied', message: 'Request has expired' });
    expect(withoutQueryAuth(req.url)).toBe('/b-1/dir%20one/k%2Bx?x-id=GetObject');
  });

  test('carry the session token of temporary credentials', async () => {
    const auth = parsed(await presigned({ expiresIn: 60, sessionToken: 'the-token' }));
    expect(auth.securityToken).toBe('the-token');
  });

  test('past a week are refused', async () => {
    const req = await presigned({ expiresIn: 60 });
    expect(parseSigV4({ ...req, url: req.url.replace('X-Amz-Expires=60', 'X-Amz-Expires=604801') })).toMatchObject({
      status: 400,
      code: 'AuthorizationQueryParametersError',
    });
  });
});

describe('credentials', () => {
  const sessionKey = newSessionKey();
  const keys: KeyRing = { staticKeys: new Map([['S3RVER', 'S3RVER']]), sessionKey };
  const session = (expiresInMs: number) => {
    const s = {
      accessKeyId: newTemporaryAccessKeyId(),
      secretAccessKey: newSecretAccessKey(),
      expiration: Date.now() + expiresInMs,
      assumedRoleArn: 'arn:aws:sts::123456789012:assumed-role/r/s',
    };
    return { ...s, sessionToken: sealSession(sessionKey, s) };
  };
  const get = ({ accessKeyId, secretAccessKey, sessionToken }: typeof KEY & { sessionToken?: string }): Promise<SignedRequest> =>
    sent((c) => c.send(new GetObjectCommand({ Bucket: 'b-1', Key: 'k' })), {
      credentials: { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) },
    });

  test('the static key, and temporary credentials with their session token', async () => {
    expect(authenticate(await get(KEY), keys, Date.now())).toEqual({
      kind: 'verified',
      accessKeyId: 'S3RVER',
      temporary: false,
      form: 'header',
    });
    const s = session(60_000);
    expect(s.accessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(authenticate(await get(s), keys, Date.now())).toEqual({
      kind: 'verified',
      accessKeyId: s.accessKeyId,
      temporary: true,
      form: 'header',
    });
  });

  test('anonymous and Signature Version 2 requests are left to s3rver', () => {
    expect(authenticate({ method: 'GET', url: '/b-1/k', rawHeaders: ['Host', 'x'] }, keys, Date.now())).toEqual({ kind: 'anonymous' });
    const v2 = { method: 'GET', url: '/b-1/k', rawHeaders: ['Host', 'x', 'Authorization', 'AWS S3RVER:abc='] };
    expect(authenticate(v2, keys, Date.now())).toEqual({ kind: 'signatureV2' });
  });

  test('refusals: S3’s codes and statuses', async () => {
    const refused = async (credentials: typeof KEY & { sessionToken?: string }, ring = keys, now = Date.now()) => {
      const outcome = authenticate(await get(credentials), ring, now);
      return outcome.kind === 'refused' ? { status: outcome.error.status, code: outcome.error.code } : outcome;
    };
    const s = session(60_000);
    expect(await refused({ ...KEY, sessionToken: s.sessionToken })).toEqual({ status: 400, code: 'InvalidToken' });
    expect(await refused({ accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey })).toEqual({
      status: 403,
      code: 'InvalidAccessKeyId',
    });
    expect(await refused({ ...s, sessionToken: session(60_000).sessionToken })).toEqual({ status: 400, code: 'InvalidToken' });
    expect(await refused({ ...s, sessionToken: `${s.sessionToken.slice(0, 20)}A${s.sessionToken.slice(21)}` })).toEqual({
      status: 400,
      code: 'InvalidToken',
    });
    expect(await refused(s, { ...keys, sessionKey: newSessionKey() })).toEqual({ status: 400, code: 'InvalidToken' });
    expect(await refused(s, { staticKeys: keys.staticKeys })).toEqual({ status: 400, code: 'InvalidToken' });
    expect(await refused(s, keys, Date.now() + 61_000)).toEqual({ status: 400, code: 'ExpiredToken' });
    expect(await refused({ ...s, secretAccessKey: newSecretAccessKey() })).toEqual({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(await refused({ accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' })).toEqual({ status: 403, code: 'InvalidAccessKeyId' });
  });
});
