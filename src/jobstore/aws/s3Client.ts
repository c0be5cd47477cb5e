/**
 * Making the S3 client the AWS job store and `s3://` imports use.
 *
 * Credentials come from the SDK's default provider chain (environment, `AWS_PROFILE` with
 * `AWS_SHARED_CREDENTIALS_FILE`/`AWS_CONFIG_FILE` or `~/.aws` — on Kubernetes the
 * `s3-credentials` secret mounted at `/root/.aws` —, web identity tokens (IRSA), container and
 * instance roles); expiring credentials are refreshed by the providers themselves. The endpoint
 * is AWS's unless `AWS_ENDPOINT_URL_S3` (or `AWS_ENDPOINT_URL`) names another, or the profile in
 * use sets `endpoint_url` (in `~/.aws/config` or the credentials file, as the AWS CLI and SDKs
 * read it: so a `s3-credentials` secret can carry the endpoint of an S3-compatible store). With
 * an endpoint of its own, path-style addressing is used (`TOIL_S3_FORCE_PATH_STYLE=true|false`
 * overrides).
 *
 * Checksums: the SDK computes request checksums only where S3 requires them
 * (`WHEN_REQUIRED`); with its newer default, streamed bodies are sent with aws-chunked framing
 * that several S3-compatible servers store verbatim. The job store checks integrity itself
 * (MD5/ETag, see `s3Transfer.ts`).
 */
import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { UsageError } from '../../errors.js';
import { BackoffRetryStrategy, type BackoffOptions } from './s3Retry.js';
import { configuredEndpoint } from './awsConfig.js';

export interface S3Settings {
  region: string;
  /** Endpoint URL for S3-compatible stores; undefined means AWS. */
  endpoint?: string;
  forcePathStyle: boolean;
  retry: BackoffOptions;
  /** Multipart part size in bytes (default 16 MiB; S3 needs ≥ 5 MiB). */
  partSize: number;
  /** Parts uploaded at once (default 4). Memory per transfer ≈ partSize × (queueSize + 1). */
  queueSize: number;
  /** Keys per LIST page (default: the server's, 1000 on S3). */
  listPageSize?: number;
}

function envInt(name: string, dflt: number, min: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${name} must be an integer ≥ ${min}, not '${v}'`);
  return n;
}

/** Settings from the environment, for a region (the locator's). */
export function s3SettingsFromEnv(region: string, env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = configuredEndpoint(env, 'AWS_ENDPOINT_URL_S3');
  const pathStyleEnv = env['TOIL_S3_FORCE_PATH_STYLE'];
  if (pathStyleEnv !== undefined && !['true', 'false', ''].includes(pathStyleEnv)) {
    throw new UsageError(`TOIL_S3_FORCE_PATH_STYLE must be true or false, not '${pathStyleEnv}'`);
  }
  const forcePathStyle = pathStyleEnv === 'true' ? true : pathStyleEnv === 'false' ? false : endpoint !== undefined;
  const MiB = 1024 * 1024;
  return {
    region,
    endpoint,
    forcePathStyle,
    retry: { maxAttempts: envInt('TOIL_S3_MAX_ATTEMPTS', 10, 1) },
    partSize: envInt('TOIL_S3_PART_SIZE', 16 * MiB, 5 * MiB),
    queueSize: envInt('TOIL_S3_PARALLEL_PARTS', 4, 1),
  };
}

/**
 * An S3 client for these settings. `followRegionRedirects` lets one client reach buckets in
 * any region (for `s3://` URLs, whose region is not known in advance).
 */
export function makeS3Client(s: S3Settings, opts: { followRegionRedirects?: boolean } = {}): S3Client {
  const agentOpts = { keepAlive: true, maxSockets: 64 };
  return new S3Client({
    region: s.region,
    followRegionRedirects: opts.followRegionRedirects ?? false,
    ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    retryStrategy: new BackoffRetryStrategy(s.retry),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: 10_000,
      requestTimeout: 120_000,
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new HttpsAgent(agentOpts),
    },
  });
}

/** Server-side encryption with a customer key: the parameters every object request carries. */
export interface SseCustomerKey {
  SSECustomerAlgorithm: 'AES256';
  /** Base64 of the 32-byte key. Never logged. */
  SSECustomerKey: string;
}

/**
 * Reads an SSE-C key file (`--sseKey FILE`): exactly 32 bytes, optionally followed by one newline
 * (as Toil's key files are).
 */
export async function loadSseKey(file: string): Promise<SseCustomerKey> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    throw new UsageError(`--sseKey: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (data.length === 33 && data[32] === 0x0a) data = data.subarray(0, 32);
  else if (data.length === 34 && data[32] === 0x0d && data[33] === 0x0a) data = data.subarray(0, 32);
  if (data.length !== 32) throw new UsageError(`--sseKey: ${file} must hold a 32-byte key (it has ${data.length} bytes)`);
  return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: data.toString('base64') };
}
