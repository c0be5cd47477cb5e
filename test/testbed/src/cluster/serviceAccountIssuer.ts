/**
 * The cluster's service-account token issuer, as kube-apiserver runs it with
 * `--service-account-issuer`, `--service-account-signing-key-file` and `--api-audiences`:
 *
 * - tokens are signed RS256 with a key of their own (an RSA 2048 key pair, as kubeadm's
 *   `sa.key`), never with the CA's key; the JWT header names the key by its `kid` (base64url of
 *   the SHA-256 of the public key's DER);
 * - the issuer (`iss`) is the API server's own URL, `https://127.0.0.1:<port>`, as on a cluster
 *   whose issuer is its external address: an OpenID Connect relying party (the test STS) fetches
 *   `<issuer>/.well-known/openid-configuration` and the key set it names from the API server;
 * - the API audience is `https://kubernetes.default.svc.cluster.local`: a token asked for
 *   without audiences gets it, and the API server accepts only tokens that name it, so a token
 *   made for another audience (`sts.amazonaws.com`) is refused there (401), as on EKS;
 * - discovery as kube-apiserver serves it (pkg/routes/openidmetadata.go):
 *   `/.well-known/openid-configuration` (`application/json`: issuer, jwks_uri, response and
 *   subject types, signing algorithms) and `/openid/v1/jwks` (`application/jwk-set+json`: the
 *   public key as a JWK with `use`, `kty`, `kid`, `alg`), both `Cache-Control: public,
 *   max-age=3600`. Who may read them is RBAC's business: the bootstrap ClusterRole
 *   `system:service-account-issuer-discovery` is bound to `system:serviceaccounts` only, so an
 *   anonymous reader (an STS) needs the binding the Kubernetes documentation gives
 *   (`kubectl create clusterrolebinding oidc-reviewer --clusterrole=system:service-account-issuer-discovery --group=system:unauthenticated`).
 */
import { generateKeyPairSync } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { jwsAlgorithm, jwtKeyId, signJwt, verifyJwt, type KeyPair } from './certs.js';

export const API_AUDIENCE = 'https://kubernetes.default.svc.cluster.local';
export const OPENID_CONFIG_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/openid/v1/jwks';
/** The two discovery paths, with and without the trailing slash, as the bootstrap role lists them. */
export const DISCOVERY_URLS = [OPENID_CONFIG_PATH, `${OPENID_CONFIG_PATH}/`, JWKS_PATH, `${JWKS_PATH}/`];

export class ServiceAccountIssuer {
  readonly key: KeyPair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  readonly keyId = jwtKeyId(this.key.publicKey);

  /** `apiServerUrl`: the API server's URL once it listens (the issuer, and the base of jwks_uri). */
  constructor(private readonly apiServerUrl: () => string) {}

  get issuer(): string {
    return this.apiServerUrl();
  }

  sign(claims: Record<string, unknown>): string {
    return signJwt(this.key, claims);
  }

  /** The claims of a token this issuer signed, or undefined (bad signature, other key, malformed). */
  verify(token: string): Record<string, unknown> | undefined {
    return verifyJwt(this.key, token);
  }

  openIdConfiguration(): Record<string, unknown> {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.apiServerUrl()}${JWKS_PATH}`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [jwsAlgorithm(this.key.publicKey)],
    };
  }

  keySet(): { keys: Record<string, unknown>[] } {
    const { n, e } = this.key.publicKey.export({ format: 'jwk' });
    return { keys: [{ use: 'sig', kty: 'RSA', kid: this.keyId, alg: jwsAlgorithm(this.key.publicKey), n, e }] };
  }

  /** Answers a GET of one of the discovery paths (already authorised) and returns true; false for any other path. */
  serve(path: string, res: ServerResponse): boolean {
    const doc = path === OPENID_CONFIG_PATH ? this.openIdConfiguration() : path === JWKS_PATH ? this.keySet() : undefined;
    if (doc === undefined) return false;
    res.writeHead(200, {
      'Content-Type': path === JWKS_PATH ? 'application/jwk-set+json' : 'application/json',
      'Cache-Control': 'public, max-age=3600',
    });
    res.end(JSON.stringify(doc));
    return true;
  }
}
