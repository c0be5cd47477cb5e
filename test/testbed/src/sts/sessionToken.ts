/**
 * Temporary credentials as the test STS issues them and the test S3 server checks them.
 *
 * AWS's session token is an opaque blob that carries the session (its secret key, expiry and
 * role) sealed for AWS's own services; this one does the same with AES-256-GCM under a key
 * shared by the STS and the S3 servers that trust it (`TestSts.sessionKey`). So S3 needs no
 * channel to the STS: a request signed with an issued access key and carrying its token is
 * checked against what the token says, and a token that was altered, or sealed under another
 * key, does not open.
 *
 * Runs in the S3 server's child process too (Node strips the types): node: imports only.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomInt } from 'node:crypto';

/** One session: what S3 needs to check a request made with it. */
export interface SessionCredentials {
  /** `ASIA` and 16 more characters, as AWS's temporary access key ids */
  accessKeyId: string;
  secretAccessKey: string;
  /** when the credentials stop working (epoch ms) */
  expiration: number;
  /** `arn:aws:sts::<account>:assumed-role/<role>/<session name>` */
  assumedRoleArn: string;
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A fresh key for sealing session tokens. */
export function newSessionKey(): Buffer {
  return randomBytes(32);
}

function randomChars(alphabet: string, n: number): string {
  return Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('');
}

/** `ASIA` + 16 characters of [A-Z2-7], the shape of AWS's temporary access key ids. */
export function newTemporaryAccessKeyId(): string {
  return `ASIA${randomChars('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`;
}

/** 40 characters of [A-Za-z0-9+/], the shape of AWS's secret access keys. */
export function newSecretAccessKey(): string {
  return randomChars('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', 40);
}

/** The session token for `session`, sealed under `key`. */
export function sealSession(key: Buffer, session: SessionCredentials): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const sealed = Buffer.concat([cipher.update(JSON.stringify(session), 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), sealed]).toString('base64');
}

function isSession(v: unknown): v is SessionCredentials {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s['accessKeyId'] === 'string' &&
    typeof s['secretAccessKey'] === 'string' &&
    typeof s['expiration'] === 'number' &&
    typeof s['assumedRoleArn'] === 'string'
  );
}

/** The session a token carries, or undefined when it is not one sealed under `key` (malformed, altered, foreign). */
export function openSession(key: Buffer, token: string): SessionCredentials | undefined {
  const raw = Buffer.from(token, 'base64');
  if (raw.length <= 1 + IV_BYTES + TAG_BYTES || raw[0] !== VERSION) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 1 + IV_BYTES));
    decipher.setAuthTag(raw.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES));
    const plain = Buffer.concat([decipher.update(raw.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
    const session: unknown = JSON.parse(plain.toString('utf8'));
    return isSession(session) ? session : undefined;
  } catch {
    return undefined;
  }
}
