/**
 * Workload identity end to end, with real parts: the test cluster as OpenID Connect issuer, the
 * test STS trusting it, the test S3 server trusting the STS, and the real AWS SDK in between.
 * A pod with a projected token for `sts.amazonaws.com` and no keys reads and writes S3 through
 * the SDK's default chain; tokens for the wrong audience or subject, expired or forged ones are
 * refused with STS's errors; S3 refuses stale or mismatched temporary credentials with its own.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { fromWebToken } from '@aws-sdk/credential-providers';
import type * as k8s from '@kubernetes/client-node';
import { signJwt } from '../src/cluster/certs.js';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { allowAnonymousIssuerDiscovery, clients, until } from '../src/cluster/testutil.js';
import { startTestS3, testS3WebIdentityEnv, type TestS3 } from '../src/s3/server.js';
import { startTestSts, type TestSts } from '../src/sts/server.js';
import { presignGet } from './presign.js';

const here = dirname(fileURLToPath(import.meta.url));
const NS = 'default';
const TOKEN_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const STATIC = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let cluster: TestCluster;
let sts: TestSts;
let s3: TestS3;
let roleArn: string;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }] });
  // the issuer's discovery documents are for service accounts only until bound for anyone, as on a real cluster
  expect((await allowAnonymousIssuerDiscovery(cluster.kubeconfigPath)).stderr).toBe('');
  const { core } = clients(cluster.kubeconfigPath);
  for (const name of ['toil-leader', 'someone-else'])
    await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } });
  sts = await startTestSts();
  sts.createOpenIdConnectProvider({ url: cluster.issuer, clientIds: ['sts.amazonaws.com'], caPem: cluster.caPem });
  roleArn = sts.createRole({
    roleName: 'toil-leader',
    provider: cluster.issuer,
    subject: `system:serviceaccount:${NS}:toil-leader`,
    audience: 'sts.amazonaws.com',
  }).arn;
  s3 = await startTestS3({ conditionalWrites: true, sts });
  await s3With(s3, STATIC).send(new CreateBucketCommand({ Bucket: 'identity-bucket' }));
});
afterAll(async () => {
  await s3?.stop();
  await sts?.stop();
  await cluster?.stop();
});

/** Temporary credentials through the SDK's own web-identity provider (its STS client), or its error. */
function assume(
  token: string,
  opts: { durationSeconds?: number; roleArn?: string; sts?: TestSts } = {},
): Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }> {
  return fromWebToken({
    roleArn: opts.roleArn ?? roleArn,
    webIdentityToken: token,
    roleSessionName: 'identity-test',
    ...(opts.durationSeconds !== undefined ? { durationSeconds: opts.durationSeconds } : {}),
    clientConfig: { endpoint: (opts.sts ?? sts).endpoint, region: 'us-east-1', maxAttempts: 1 },
  })();
}

/** The error a promise rejects with: name (the SDK's exception), message, HTTP status. */
async function refusal(p: Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected a refusal');
}

const forSts = (sa = 'toil-leader', expirationSeconds = 3600): string =>
  cluster.createToken(NS, sa, expirationSeconds, ['sts.amazonaws.com']);

function s3With(server: TestS3, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): S3Client {
  const { accessKeyId, secretAccessKey, sessionToken } = credentials;
  return new S3Client({
    region: 'us-east-1',
    endpoint: server.endpoint,
    forcePathStyle: true,
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    credentials: { accessKeyId, secretAccessKey, ...(sessionToken !== undefined ? { sessionToken } : {}) },
  });
}

test('a pod with a projected token and no keys writes and reads S3 through the SDK’s web-identity chain', async () => {
  const { core } = clients(cluster.kubeconfigPath);
  await s3.resetCounts();
  sts.resetCounts();
  const env = testS3WebIdentityEnv(s3, { sts, roleArn, tokenFile: `${TOKEN_DIR}/token`, sessionName: 'toil-pod' });
  const pod: k8s.V1Pod = {
    metadata: { name: 'web-identity' },
    spec: {
      restartPolicy: 'Never',
      serviceAccountName: 'toil-leader',
      automountServiceAccountToken: false,
      volumes: [
        {
          name: 'aws-iam-token',
          projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
        },
      ],
      containers: [
        {
          name: 'main',
          image: 'toil-ts:dev',
          command: ['node', join(here, 'fixtures/s3-web-identity.mjs'), 'pod-bucket', 'greeting.txt', 'hello from a pod'],
          env: Object.entries(env).map(([name, value]) => ({ name, value })),
          volumeMounts: [{ name: 'aws-iam-token', mountPath: TOKEN_DIR, readOnly: true }],
        },
      ],
    },
  };
  await core.createNamespacedPod({ namespace: NS, body: pod });
  const done = await until(
    'the web-identity pod to end',
    async () => {
      const p = await core.readNamespacedPod({ namespace: NS, name: 'web-identity' });
      return ['Succeeded', 'Failed'].includes(p.status?.phase ?? '') ? p : undefined;
    },
    60_000,
  );
  const log = await core.readNamespacedPodLog({ namespace: NS, name: 'web-identity' });
  expect(done.status?.phase).toBe('Succeeded');
  expect(JSON.parse(log)).toEqual({
    body: 'hello from a pod',
    accessKeyId: 'ASIA',
    sessionToken: true,
    expiresInS: expect.any(Number),
    keysInEnv: [],
  });
  expect(JSON.parse(log).expiresInS).toBeGreaterThan(3000);

  const counts = await s3.requestCount();
  expect(counts.auth).toEqual({ static: 0, temporary: 3, signatureV2: 0, anonymous: 0, refused: {} });
  expect(sts.requestCounts()).toEqual({ total: 1, byAction: { AssumeRoleWithWebIdentity: 1 }, issued: 1, refused: {} });
  const got = await s3With(s3, STATIC).send(new GetObjectCommand({ Bucket: 'pod-bucket', Key: 'greeting.txt' }));
  expect(await got.Body!.transformToString()).toBe('hello from a pod');
});

describe('STS', () => {
  test('answers with AWS’s XML: credentials, subject, audience, assumed role, provider', async () => {
    const body = new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity',
      Version: '2011-06-15',
      RoleArn: roleArn,
      RoleSessionName: 'raw-session',
      WebIdentityToken: forSts(),
      DurationSeconds: '900',
    });
    const res = await fetch(sts.endpoint, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const xml = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/xml');
    const el = (tag: string): string | undefined => new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml)?.[1];
    expect(xml).toMatch(
      /^<AssumeRoleWithWebIdentityResponse xmlns="https:\/\/sts\.amazonaws\.com\/doc\/2011-06-15\/"><AssumeRoleWithWebIdentityResult>/,
    );
    expect(el('SubjectFromWebIdentityToken')).toBe(`system:serviceaccount:${NS}:toil-leader`);
    expect(el('Audience')).toBe('sts.amazonaws.com');
    expect(el('Arn')).toBe('arn:aws:sts::123456789012:assumed-role/toil-leader/raw-session');
    expect(el('AssumedRoleId')).toMatch(/^AROA[A-Z2-7]{17}:raw-session$/);
    expect(el('AccessKeyId')).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(el('SecretAccessKey')).toMatch(/^[A-Za-z0-9+/]{40}$/);
    expect(el('SessionToken')!.length).toBeGreaterThan(100);
    const expiresIn = Date.parse(el('Expiration')!) - Date.now();
    expect(expiresIn).toBeGreaterThan(880_000);
    expect(expiresIn).toBeLessThanOrEqual(900_000);
    expect(el('Provider')).toBe(cluster.issuer);
    expect(xml).toMatch(
      /<ResponseMetadata><RequestId>[0-9a-f-]{36}<\/RequestId><\/ResponseMetadata><\/AssumeRoleWithWebIdentityResponse>$/,
    );
  });

  test('the SDK’s provider gets working credentials for the default duration', async () => {
    const creds = await assume(forSts());
    expect(creds.accessKeyId).toMatch(/^ASIA/);
    const left = creds.expiration!.getTime() - Date.now();
    expect(left).toBeGreaterThan(3500_000);
    expect(left).toBeLessThanOrEqual(3600_000);
    await s3With(s3, creds).send(new PutObjectCommand({ Bucket: 'identity-bucket', Key: 'sdk.txt', Body: 'x' }));
  });

  test('a token for another audience is InvalidIdentityToken “Incorrect token audience” (400)', async () => {
    const incorrect = { name: 'InvalidIdentityTokenException', message: 'Incorrect token audience', status: 400 };
    expect(await refusal(assume(cluster.createToken(NS, 'toil-leader', 3600, ['some-other-client'])))).toEqual(incorrect);
    expect(await refusal(assume(cluster.createToken(NS, 'toil-leader')))).toEqual(incorrect);
  });

  test('a token for another service account is AccessDenied (403)', async () => {
    expect(await refusal(assume(forSts('someone-else')))).toEqual({
      name: 'AccessDenied',
      message: 'Not authorized to perform sts:AssumeRoleWithWebIdentity',
      status: 403,
    });
    expect(await refusal(assume(forSts(), { roleArn: 'arn:aws:iam::123456789012:role/no-such-role' }))).toMatchObject({
      name: 'AccessDenied',
      status: 403,
    });
  });

  test('an expired token is ExpiredTokenException (400)', async () => {
    const token = forSts('toil-leader', 1);
    await new Promise((r) => setTimeout(r, 2100));
    const r = await refusal(assume(token));
    expect(r).toMatchObject({ name: 'ExpiredTokenException', status: 400 });
    expect(r.message).toMatch(/^Token expired: current date\/time \d+ must be before the expiration date\/time \d+$/);
  });

  test('forged, altered and unknown-issuer tokens are InvalidIdentityToken (400)', async () => {
    const token = forSts();
    const [h, b, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(b, 'base64url').toString()) as Record<string, unknown>;
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const altered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: `system:serviceaccount:${NS}:x` })).toString('base64url')}.${s}`;
    for (const bad of [signJwt(other, claims), altered])
      expect(await refusal(assume(bad))).toMatchObject({ name: 'InvalidIdentityTokenException', status: 400 });
    expect(await refusal(assume(signJwt(other, { ...claims, iss: 'https://issuer.example' })))).toEqual({
      name: 'InvalidIdentityTokenException',
      message: 'No OpenIDConnect provider found in your account for https://issuer.example',
      status: 400,
    });
    expect(await refusal(assume('not-a-jwt'))).toMatchObject({ name: 'InvalidIdentityTokenException', status: 400 });
  });

  test('DurationSeconds: 900 to the role’s maximum (3600 by default), else ValidationError (400)', async () => {
    expect((await assume(forSts(), { durationSeconds: 900 })).accessKeyId).toMatch(/^ASIA/);
    expect(await refusal(assume(forSts(), { durationSeconds: 899 }))).toEqual({
      name: 'ValidationError',
      message:
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
      status: 400,
    });
    expect(await refusal(assume(forSts(), { durationSeconds: 7200 }))).toEqual({
      name: 'ValidationError',
      message: 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.',
      status: 400,
    });
  });
});

describe('S3 with temporary credentials', () => {
  test('a wrong, foreign or missing session token, or a wrong secret, is refused with S3’s error', async () => {
    const a = await assume(forSts());
    const b = await assume(forSts());
    const put = (c: Parameters<typeof s3With>[1]) =>
      refusal(s3With(s3, c).send(new PutObjectCommand({ Bucket: 'identity-bucket', Key: 'refused.txt', Body: 'x' })));
    expect(await put({ ...a, sessionToken: b.sessionToken! })).toMatchObject({ name: 'InvalidToken', status: 400 });
    expect(await put({ ...a, sessionToken: `${a.sessionToken!.slice(0, 30)}${a.sessionToken!.slice(31)}` })).toMatchObject({
      name: 'InvalidToken',
      status: 400,
    });
    const { sessionToken: _unused, ...keysOnly } = a;
    expect(await put(keysOnly)).toMatchObject({ name: 'InvalidAccessKeyId', status: 403 });
    expect(await put({ ...a, secretAccessKey: b.secretAccessKey })).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(await put({ ...STATIC, sessionToken: a.sessionToken! })).toMatchObject({ name: 'InvalidToken', status: 400 });
  });

  test('stale credentials are ExpiredToken (400), signed or presigned; fresh ones from the same STS work', async () => {
    // credentials that expire within the test: an STS with the opt-in shorter minimum, and an S3 server trusting it
    const quick = await startTestSts({ minDurationSeconds: 1 });
    const quickS3 = await startTestS3({ conditionalWrites: true, sts: quick });
    try {
      quick.createOpenIdConnectProvider({ url: cluster.issuer, clientIds: ['sts.amazonaws.com'], caPem: cluster.caPem });
      const arn = quick.createRole({ roleName: 'toil-leader', provider: cluster.issuer, subject: `system:serviceaccount:${NS}:*` }).arn;
      const fresh = await assume(forSts(), { sts: quick, roleArn: arn });
      await s3With(quickS3, STATIC).send(new CreateBucketCommand({ Bucket: 'quick-bucket' }));
      const stale = await assume(forSts(), { sts: quick, roleArn: arn, durationSeconds: 1 });
      await new Promise((r) => setTimeout(r, stale.expiration!.getTime() - Date.now() + 1000));
      const put = (c: Parameters<typeof s3With>[1]) =>
        s3With(quickS3, c).send(new PutObjectCommand({ Bucket: 'quick-bucket', Key: 'k', Body: 'y' }));
      expect(await refusal(put(stale))).toEqual({ name: 'ExpiredToken', message: 'The provided token has expired.', status: 400 });
      const url = `${quickS3.endpoint}/quick-bucket/k`;
      const presignedStale = await fetch(await presignGet(url, stale, 600));
      expect(presignedStale.status).toBe(400);
      expect(await presignedStale.text()).toContain('<Code>ExpiredToken</Code>');
      await put(fresh);
      const presignedFresh = await fetch(await presignGet(url, fresh, 600));
      expect(await presignedFresh.text()).toBe('y');
      expect((await quickS3.requestCount()).auth).toMatchObject({ temporary: 2, refused: { ExpiredToken: 2 } });
    } finally {
      await quickS3.stop();
      await quick.stop();
    }
  });
});
