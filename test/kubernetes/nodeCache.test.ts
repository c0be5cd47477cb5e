/**
 * The node cache on the test cluster: two nodes, TOIL_KUBERNETES_HOST_PATH set (each node has
 * its own host directory), the AWS job store on the test S3 server counting GETs per object.
 * 20 jobs over both nodes read one 64 MiB file: one GET per node, not one per job; a file a job
 * writes is read by its successor on the same node with no GET at all.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileKey } from '../../src/jobstore/aws/s3Keys.js';
import { SHARED_TMP, toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useK8sEnv } from './useK8sEnv.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv({ nodes: [{ name: 'node-1' }, { name: 'node-2' }] });
const READERS = 20;

interface Result {
  hashes: string[];
  big: string;
  made: string;
  madeRead: string;
}

async function bigFile(): Promise<{ file: string; sha: string }> {
  const data = Buffer.alloc(64 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
  const file = path.join(t.dir, 'reference.bin');
  await writeFile(file, data);
  return { file, sha: createHash('sha256').update(data).digest('hex') };
}

/** GETs of one file's object, whatever the bucket. */
async function getsOf(id: string): Promise<number> {
  const key = fileKey(id);
  const { gets } = await k.s3.requestCount();
  return Object.entries(gets)
    .filter(([k2]) => k2.endsWith(`/${key}`))
    .reduce((n, [, v]) => n + v, 0);
}

async function run(caching: boolean): Promise<Result> {
  const { file } = await bigFile();
  await k.s3.resetCounts();
  const r = await toil(
    [
      'run',
      workflow('sharedRead.ts'),
      k.locator(),
      '--batchSystem',
      'kubernetes',
      '--disableCaching',
      String(!caching),
      '--',
      file,
      String(READERS),
    ],
    { env: k.env },
  );
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(r.stdout) as Result;
}

describe('the node cache on Kubernetes', () => {
  it('20 readers over two nodes: one GET of the shared file per node, and a written file is read back with none', async () => {
    const { sha } = await bigFile();
    const result = await run(true);
    expect(result.hashes).toEqual(Array(READERS).fill(sha));
    const nodesUsed = ['node-1', 'node-2'].filter((n) =>
      existsSync(path.join(k.cluster.hostPathDir(n, '/data/scratch'), 'work', 'toil-cache')),
    );
    expect(nodesUsed).toEqual(['node-1', 'node-2']);
    expect(await getsOf(result.big)).toBe(nodesUsed.length);
    expect(result.madeRead).toBe(
      createHash('sha256')
        .update(Buffer.alloc(4 * 1024 * 1024, 7))
        .digest('hex'),
    );
    expect(await getsOf(result.made)).toBe(0);
  }, 240_000);

  it('with --disableCaching true every reader downloads it', async () => {
    const { sha } = await bigFile();
    const result = await run(false);
    expect(result.hashes).toEqual(Array(READERS).fill(sha));
    expect(await getsOf(result.big)).toBe(READERS);
  }, 240_000);
});
