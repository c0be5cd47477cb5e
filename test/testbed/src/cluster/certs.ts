/**
 * Minimal X.509 certificate authority for the test cluster, written against Node's crypto only
 * (no openssl binary, no npm package). Produces an ECDSA P-256 CA and leaf certificates in PEM,
 * and signs/verifies RS256 and ES256 JSON Web Tokens (the service-account tokens, signed with
 * the cluster's service-account key: see serviceAccountIssuer.ts).
 */
import { createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(content.length), content]);
}
const seq = (...c: Buffer[]): Buffer => tlv(0x30, Buffer.concat(c));
const set = (...c: Buffer[]): Buffer => tlv(0x31, Buffer.concat(c));
function oid(s: string): Buffer {
  const parts = s.split('.').map(Number);
  const out: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const stack: number[] = [p & 0x7f];
    let v = Math.floor(p / 128);
    while (v > 0) {
      stack.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...stack);
  }
  return tlv(0x06, Buffer.from(out));
}
function int(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && ((b[i + 1] ?? 0) & 0x80) === 0) i++; // DER: minimal encoding
  const v = b.subarray(i);
  return tlv(0x02, (v[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octet = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
function time(d: Date): Buffer {
  const p = (n: number): string => String(n).padStart(2, '0');
  const s = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(s, 'ascii'));
}
function name(cn: string, o?: string): Buffer {
  const rdns = [];
  if (o) rdns.push(set(seq(oid('2.5.4.10'), utf8(o))));
  rdns.push(set(seq(oid('2.5.4.3'), utf8(cn))));
  return seq(...rdns);
}
function ext(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octet(value));
}
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}
export interface Cert {
  certPem: string;
  keyPem: string;
  key: KeyPair;
  der: Buffer;
  subject: Buffer;
}

function keyId(pub: KeyObject): Buffer {
  return createHash('sha1')
    .update(pub.export({ type: 'spki', format: 'der' }))
    .digest();
}

function buildCert(opts: {
  subject: Buffer;
  issuer: Buffer;
  key: KeyPair;
  signer: KeyObject;
  issuerKey: KeyObject;
  ca: boolean;
  dns?: string[];
  ips?: string[];
  usages?: ('server' | 'client')[];
}): Buffer {
  const now = Date.now();
  const exts: Buffer[] = [];
  exts.push(ext('2.5.29.15', true, bitString(Buffer.from([opts.ca ? 0x86 : 0xa0]))));
  if (opts.usages?.length) {
    exts.push(ext('2.5.29.37', false, seq(...opts.usages.map((u) => oid(u === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2')))));
  }
  exts.push(ext('2.5.29.19', true, opts.ca ? seq(bool(true)) : seq()));
  exts.push(ext('2.5.29.14', false, octet(keyId(opts.key.publicKey))));
  if (!opts.ca) exts.push(ext('2.5.29.35', false, seq(tlv(0x80, keyId(opts.issuerKey)))));
  const san: Buffer[] = [];
  for (const d of opts.dns ?? []) san.push(tlv(0x82, Buffer.from(d, 'ascii')));
  for (const ip of opts.ips ?? []) san.push(tlv(0x87, Buffer.from(ip.split('.').map(Number))));
  if (san.length) exts.push(ext('2.5.29.17', false, seq(...san)));
  // positive and minimally encoded (a leading zero byte would be illegal DER padding)
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x40;
  const tbs = seq(
    tlv(0xa0, int(Buffer.from([2]))),
    int(serial),
    ECDSA_SHA256,
    opts.issuer,
    seq(time(new Date(now - 3600_000)), time(new Date(now + 365 * 86400_000))),
    opts.subject,
    opts.key.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...exts)),
  );
  const sig = sign('sha256', tbs, { key: opts.signer, dsaEncoding: 'der' });
  return seq(tbs, ECDSA_SHA256, bitString(sig));
}

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
function newKey(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}
function keyPem(k: KeyPair): string {
  return k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function createCA(cn = 'toil-ts-test-cluster-ca'): Cert {
  const key = newKey();
  const subject = name(cn);
  const der = buildCert({ subject, issuer: subject, key, signer: key.privateKey, issuerKey: key.publicKey, ca: true });
  return { certPem: pem('CERTIFICATE', der), keyPem: keyPem(key), key, der, subject };
}

export function issueCert(
  ca: Cert,
  cn: string,
  opts: { dns?: string[]; ips?: string[]; usages: ('server' | 'client')[]; org?: string },
): Cert {
  const key = newKey();
  const subject = name(cn, opts.org);
  const der = buildCert({
    subject,
    issuer: ca.subject,
    key,
    signer: ca.key.privateKey,
    issuerKey: ca.key.publicKey,
    ca: false,
    dns: opts.dns ?? [],
    ips: opts.ips ?? [],
    usages: opts.usages,
  });
  return { certPem: pem('CERTIFICATE', der), keyPem: keyPem(key), key, der, subject };
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** The JWS algorithm a key signs with: RS256 for RSA keys, ES256 for P-256 keys (the two kube-apiserver uses most). */
export function jwsAlgorithm(key: KeyObject): 'RS256' | 'ES256' {
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`no JWS algorithm for a ${String(key.asymmetricKeyType)} key`);
}

/** The `kid` kube-apiserver gives a signing key: base64url of the SHA-256 of its public key's DER (SPKI). */
export function jwtKeyId(publicKey: KeyObject): string {
  return b64url(
    createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest(),
  );
}

/** ECDSA signatures in a JWS are r‖s (IEEE P1363), not DER. */
const jwsSignOptions = (key: KeyObject): { key: KeyObject; dsaEncoding?: 'ieee-p1363' } =>
  key.asymmetricKeyType === 'ec' ? { key, dsaEncoding: 'ieee-p1363' } : { key };

/** Signs a JWT with `key` (RS256 or ES256 by its type); the header carries the key's `kid`, like kube-apiserver's. */
export function signJwt(key: KeyPair, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: jwsAlgorithm(key.publicKey), kid: jwtKeyId(key.publicKey) }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), jwsSignOptions(key.privateKey));
  return `${head}.${body}.${b64url(sig)}`;
}

/**
 * Verifies a JWT signed by `key`; returns its claims, or undefined when it is malformed, names
 * another algorithm than the key's (no algorithm confusion) or its signature does not verify.
 */
export function verifyJwt(key: KeyPair, token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const [h, b, s] = parts as [string, string, string];
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown };
    if (header.alg !== jwsAlgorithm(key.publicKey)) return undefined;
    if (!verify('sha256', Buffer.from(`${h}.${b}`), jwsSignOptions(key.publicKey), Buffer.from(s, 'base64url'))) return undefined;
    return JSON.parse(Buffer.from(b, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
