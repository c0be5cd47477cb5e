/**
 * The test S3 server's multipart uploads when a client goes away in the middle of a part, as S3
 * answers: the part fails and is not kept, and the upload can still be aborted (or completed
 * with parts sent again) at once. s3rver's own UploadPart never settled on a request that ended
 * early, holding the upload's lock, so aborting that upload never answered.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { request } from 'node:http';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { startTestS3, type TestS3 } from '../src/s3/server.js';
import { presign } from './presign.js';

const KEY = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const MiB = 1024 * 1024;
let s3: TestS3;
let client: S3Client;

beforeAll(async () => {
  s3 = await startTestS3({ conditionalWrites: true });
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: KEY });
  await client.send(new CreateBucketCommand({ Bucket: 'parts' }));
});
afterAll(async () => {
  client.destroy();
  await s3.stop();
});

/** Starts a part of `size` bytes, sends its first MiB, then drops the connection. */
async function partCutShort(key: string, uploadId: string, size: number): Promise<void> {
  const url = await presign('PUT', `${s3.endpoint}/parts/${key}?partNumber=1&uploadId=${encodeURIComponent(uploadId)}`, KEY, 60);
  const req = request(url, { method: 'PUT', headers: { 'content-length': String(size) } });
  req.on('error', () => {
    /* the connection is dropped on purpose */
  });
  req.write(Buffer.alloc(MiB, 1));
  // the server has the first MiB in hand, and waits for the rest
  await new Promise((r) => setTimeout(r, 500));
  req.destroy();
}

/** `p`, or a rejection naming `what` if it has not settled in `ms`. */
async function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

test('a part whose client went away can be aborted at once, and leaves nothing', async () => {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'parts', Key: 'a' }));
  await partCutShort('a', UploadId!, 5 * MiB);
  await within(5_000, client.send(new AbortMultipartUploadCommand({ Bucket: 'parts', Key: 'a', UploadId })), 'AbortMultipartUpload');
  await expect(client.send(new UploadPartCommand({ Bucket: 'parts', Key: 'a', UploadId, PartNumber: 1, Body: 'x' }))).rejects.toMatchObject(
    {
      name: 'NoSuchUpload',
    },
  );
});

test('an upload whose part was cut short completes with that part sent again', async () => {
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'parts', Key: 'b' }));
  await partCutShort('b', UploadId!, 5 * MiB);
  const body = Buffer.alloc(5 * MiB + 3, 9);
  const part = await within(
    5_000,
    client.send(new UploadPartCommand({ Bucket: 'parts', Key: 'b', UploadId, PartNumber: 1, Body: body })),
    'UploadPart',
  );
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'parts',
      Key: 'b',
      UploadId,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
    }),
  );
  const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: 'parts', Key: 'b' }))).Body!.transformToByteArray());
  expect(got.equals(body)).toBe(true);
});
