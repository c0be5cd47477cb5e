/**
 * The cluster as an OpenID Connect issuer: its discovery documents as kube-apiserver serves them
 * (readable by service accounts, by anyone only once bound), RS256 tokens that verify with the
 * published key, and the API server accepting only tokens for its own audience.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import https from 'node:https';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { allowAnonymousIssuerDiscovery, clients, kubectl } from '../src/cluster/testutil.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }] });
  const { core } = clients(cluster.kubeconfigPath);
  await core.createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'robot' } } });
});
afterAll(async () => {
  await cluster?.stop();
});

interface Answer {
  code: number;
  type: string | undefined;
  cacheControl: string | undefined;
  json: Record<string, unknown>;
}

/** GET on the API server, anonymous or with a bearer token, trusting the cluster's CA. */
function get(path: string, token?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = token ? { Authorization: `Bearer ${token}` } : {};
    https
      .get(`${cluster.server}${path}`, { ca: cluster.caPem, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            code: res.statusCode ?? 0,
            type: res.headers['content-type'],
            cacheControl: res.headers['cache-control'],
            json: JSON.parse(text) as Record<string, unknown>,
          });
        });
      })
      .on('error', reject);
  });
}

const part = (token: string, i: number): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[i]!, 'base64url').toString('utf8')) as Record<string, unknown>;

test('the discovery documents are the issuer’s, for service accounts only until bound to system:unauthenticated', async () => {
  expect(cluster.issuer).toBe(cluster.server);
  const anonymous = await get('/.well-known/openid-configuration');
  expect(anonymous.code).toBe(403);
  expect(anonymous.json['message']).toBe('forbidden: User "system:anonymous" cannot get path "/.well-known/openid-configuration"');

  const robot = cluster.createToken('default', 'robot');
  const config = await get('/.well-known/openid-configuration', robot);
  expect(config).toEqual({
    code: 200,
    type: 'application/json',
    cacheControl: 'public, max-age=3600',
    json: {
      issuer: cluster.issuer,
      jwks_uri: `${cluster.server}/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
    },
  });

  const bind = await allowAnonymousIssuerDiscovery(cluster.kubeconfigPath);
  expect(bind.stdout).toBe('clusterrolebinding.rbac.authorization.k8s.io/oidc-reviewer created\n');
  const jwks = await get('/openid/v1/jwks/');
  expect(jwks.code).toBe(200);
  expect(jwks.type).toBe('application/jwk-set+json');
  const keys = jwks.json['keys'] as Record<string, unknown>[];
  expect(keys).toHaveLength(1);
  expect(keys[0]).toMatchObject({ use: 'sig', kty: 'RSA', alg: 'RS256', e: 'AQAB' });
  expect((await get('/.well-known/openid-configuration')).code).toBe(200);
});

test('tokens are RS256, verify with the published key, and name the issuer and their audience', async () => {
  const jwk = ((await get('/openid/v1/jwks', cluster.createToken('default', 'robot'))).json['keys'] as JsonWebKey[])[0]!;
  const { core } = clients(cluster.kubeconfigPath);
  const tr = await core.createNamespacedServiceAccountToken({
    namespace: 'default',
    name: 'robot',
    body: { spec: { audiences: ['sts.amazonaws.com'], expirationSeconds: 86400 } },
  });
  const token = tr.status!.token!;
  expect(part(token, 0)).toEqual({ alg: 'RS256', kid: jwk['kid'] });
  expect(part(token, 1)).toMatchObject({ iss: cluster.issuer, aud: ['sts.amazonaws.com'], sub: 'system:serviceaccount:default:robot' });
  const [h, b, s] = token.split('.') as [string, string, string];
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  expect(verify('sha256', Buffer.from(`${h}.${b}`), key, Buffer.from(s, 'base64url'))).toBe(true);
  expect(verify('sha256', Buffer.from(`${h}.${b}x`), key, Buffer.from(s, 'base64url'))).toBe(false);
});

test('the API server takes only tokens for its own audience, and not once expired', async () => {
  const whoami = (token: string): Promise<{ code: number; stdout: string }> =>
    kubectl(cluster.kubeconfigPath, ['--token', token, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
  expect(part(cluster.createToken('default', 'robot'), 1)['aud']).toEqual(['https://kubernetes.default.svc.cluster.local']);
  expect((await whoami(cluster.createToken('default', 'robot'))).stdout).toBe('system:serviceaccount:default:robot');

  const forSts = await whoami(cluster.createToken('default', 'robot', 3600, ['sts.amazonaws.com']));
  expect(forSts.code).not.toBe(0);
  const expiring = cluster.createToken('default', 'robot', 1);
  await new Promise((r) => setTimeout(r, 2100));
  const expired = await whoami(expiring);
  expect(expired.code).not.toBe(0);
  expect(expired.stdout).toBe('');
  const body = await get('/api', expiring);
  expect(body.code).toBe(401);
  expect(body.json['reason']).toBe('Unauthorized');
});
