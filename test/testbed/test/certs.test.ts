/** The cluster's own CA: certificates must always be valid DER that OpenSSL and Go accept. */
import { expect, test } from '@jest/globals';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { createCA, issueCert, signJwt, verifyJwt } from '../src/cluster/certs.js';

test('many CAs and serving certificates parse, chain and load into a TLS context', () => {
  for (let i = 0; i < 300; i++) {
    const ca = createCA();
    const s = issueCert(ca, 'kube-apiserver', { ips: ['127.0.0.1'], dns: ['localhost'], usages: ['server'] });
    const x = new X509Certificate(s.certPem);
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(x.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    tls.createSecureContext({ cert: s.certPem, key: s.keyPem, ca: ca.certPem });
  }
});

test.each([
  ['ES256', () => createCA().key],
  ['RS256', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
])('%s JWTs verify only with the signing key, untampered and under their own algorithm', (alg, newKey) => {
  const a = newKey();
  const b = newKey();
  const t = signJwt(a, { sub: 'x', exp: 1 });
  const [h, , sig] = t.split('.');
  expect(JSON.parse(Buffer.from(h!, 'base64url').toString())).toMatchObject({ alg });
  expect(verifyJwt(a, t)).toEqual({ sub: 'x', exp: 1 });
  expect(verifyJwt(b, t)).toBeUndefined();
  expect(verifyJwt(a, `${h}.${Buffer.from('{"sub":"y","exp":1}').toString('base64url')}.${sig}`)).toBeUndefined();
  const otherAlg = Buffer.from(JSON.stringify({ alg: alg === 'RS256' ? 'ES256' : 'RS256' })).toString('base64url');
  expect(verifyJwt(a, `${otherAlg}.${t.split('.')[1]}.${sig}`)).toBeUndefined();
});
