/** Presigned S3 URLs made with the AWS SDK's own SigV4 signer, as its S3 presigner makes them. */
import { createHash, createHmac, type BinaryLike } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData): BinaryLike =>
  typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);

/** The signer's hash: SHA-256, or HMAC-SHA-256 with a secret. */
class Sha256 {
  private readonly h;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

/**
 * A presigned GET of `url` (its path already encoded, as S3 paths are sent): payload
 * UNSIGNED-PAYLOAD and only `host` signed, as the SDK's S3 presigner does it.
 */
export function presignGet(
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  expiresIn: number,
): Promise<string> {
  return presign('GET', url, credentials, expiresIn);
}

/** A presigned request of any method, signed as presignGet's. */
export async function presign(
  method: string,
  url: string,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  expiresIn: number,
): Promise<string> {
  const u = new URL(url);
  const signer = new SignatureV4({ credentials, region: 'us-east-1', service: 's3', sha256: Sha256, uriEscapePath: false });
  const sha = new Set(['x-amz-content-sha256']);
  const signed = await signer.presign(
    {
      method,
      protocol: u.protocol,
      hostname: u.hostname,
      port: Number(u.port),
      path: u.pathname,
      query: Object.fromEntries(u.searchParams),
      headers: { host: u.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn, unsignableHeaders: sha, unhoistableHeaders: sha },
  );
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  return `${u.origin}${signed.path}?${query}`;
}
