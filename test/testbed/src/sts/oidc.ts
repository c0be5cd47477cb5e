/**
 * The test STS as an OpenID Connect relying party, as AWS STS is one for each OIDC provider
 * registered in IAM:
 *
 * - a web identity token is a JWT (`header.payload.signature`, base64url JSON), signed RS256,
 *   RS384, RS512, ES256, ES384 or ES512;
 * - the verification key comes from the issuer: `<iss>/.well-known/openid-configuration`, whose
 *   `issuer` must be the token's and whose `jwks_uri` names the key set; keys are matched by
 *   `kid`. Both are fetched over HTTPS trusting the provider's CA (where AWS trusts public CAs
 *   or the provider's thumbprints), each fetch bounded by a timeout;
 * - key sets are kept for `maxAgeMs` and fetched again when a token names a key they lack (a
 *   rotated signing key is found at once).
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import https from 'node:https';
import { z } from 'zod';

/** A JWT's two JSON parts and what its signature covers. */
export interface DecodedJwt {
  header: { alg?: unknown; kid?: unknown };
  claims: Record<string, unknown>;
  signedPart: string;
  signature: Buffer;
}

/** The JWT's parts, or undefined when it is not a JWT (three base64url parts, two JSON objects). */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return undefined;
  const json = (p: string): unknown => JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  try {
    const header = json(parts[0]!);
    const claims = json(parts[1]!);
    if (typeof header !== 'object' || header === null || typeof claims !== 'object' || claims === null || Array.isArray(claims))
      return undefined;
    return {
      header: header as DecodedJwt['header'],
      claims: claims as Record<string, unknown>,
      signedPart: `${parts[0]!}.${parts[1]!}`,
      signature: Buffer.from(parts[2]!, 'base64url'),
    };
  } catch {
    return undefined;
  }
}

const ALGORITHMS: Record<string, { hash: string; ec: boolean }> = {
  RS256: { hash: 'sha256', ec: false },
  RS384: { hash: 'sha384', ec: false },
  RS512: { hash: 'sha512', ec: false },
  ES256: { hash: 'sha256', ec: true },
  ES384: { hash: 'sha384', ec: true },
  ES512: { hash: 'sha512', ec: true },
};

/** Whether the JWT's signature verifies with `key` under the algorithm its header names. */
export function signatureValid(jwt: DecodedJwt, key: KeyObject): boolean {
  const alg = typeof jwt.header.alg === 'string' ? ALGORITHMS[jwt.header.alg] : undefined;
  if (alg === undefined || (key.asymmetricKeyType === 'ec') !== alg.ec) return false;
  try {
    return verify(alg.hash, Buffer.from(jwt.signedPart), alg.ec ? { key, dsaEncoding: 'ieee-p1363' } : key, jwt.signature);
  } catch {
    return false;
  }
}

const discoverySchema = z.object({ issuer: z.string(), jwks_uri: z.url() });
const jwksSchema = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.string().optional() })) });

/** GET of a JSON document over HTTPS, trusting `caPem` (else the system's CAs); bounded by `timeoutMs`. */
function getJson(url: string, caPem: string | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (!url.startsWith('https://')) return reject(new Error(`${url} is not an https URL`));
    const req = https.get(url, { ...(caPem ? { ca: caPem } : {}), timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${String(res.statusCode)}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error(`GET ${url}: not JSON`));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/** An issuer to fetch keys from: its URL (the tokens' `iss`) and the CA its server certificate chains to. */
export interface KeySource {
  url: string;
  caPem?: string;
}

/** Verification keys of OIDC issuers, fetched through their discovery documents and kept a while. */
export class IssuerKeys {
  private readonly cache = new Map<string, { keys: Map<string, KeyObject>; fetchedAt: number }>();

  constructor(private readonly opts: { timeoutMs: number; maxAgeMs: number }) {}

  private async fetchKeys(source: KeySource): Promise<Map<string, KeyObject>> {
    const discovery = discoverySchema.parse(
      await getJson(`${source.url.replace(/\/$/, '')}/.well-known/openid-configuration`, source.caPem, this.opts.timeoutMs),
    );
    if (discovery.issuer !== source.url) throw new Error(`the discovery document names issuer ${discovery.issuer}, not ${source.url}`);
    const jwks = jwksSchema.parse(await getJson(discovery.jwks_uri, source.caPem, this.opts.timeoutMs));
    const keys = new Map<string, KeyObject>();
    for (const [i, jwk] of jwks.keys.entries()) keys.set(jwk.kid ?? `#${i}`, createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }));
    this.cache.set(source.url, { keys, fetchedAt: Date.now() });
    return keys;
  }

  /**
   * The issuer's key with this `kid` (or its only key, for a token without one): from the cache,
   * else fetched anew. Undefined when the issuer has no such key; rejects when it cannot be read.
   */
  async key(source: KeySource, kid: string | undefined): Promise<KeyObject | undefined> {
    const pick = (keys: Map<string, KeyObject>): KeyObject | undefined =>
      kid !== undefined ? keys.get(kid) : keys.size === 1 ? [...keys.values()][0] : undefined;
    const cached = this.cache.get(source.url);
    const fresh = cached && Date.now() - cached.fetchedAt < this.opts.maxAgeMs ? pick(cached.keys) : undefined;
    return fresh ?? pick(await this.fetchKeys(source));
  }
}
