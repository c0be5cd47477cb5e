/**
 * The kubernetes batch system with an AWS job store whose metadata is in SimpleDB: worker pods
 * get AWS_ENDPOINT_URL_SIMPLEDB as they get the S3 endpoint, their credentials from the mounted
 * `s3-credentials` secret, and follow the store's marker without being told the choice.
 */
import { describe, expect, it } from '@jest/globals';
import { SHARED_TMP, toil, traceLines, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useSimpleDb } from '../jobstore/useSimpleDb.js';
import { useK8sEnv } from './useK8sEnv.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv();
const sdb = useSimpleDb();

describe('kubernetes batch system, --awsMetadata simpledb', () => {
  it('runs a fan-out in worker pods, each job exactly once, and removes the domains', async () => {
    const loc = k.locator();
    const name = loc.split(':')[2]!;
    sdb.server.resetCounts();
    const r = await toil(
      ['run', workflow('onceEach.ts'), loc, '--batchSystem', 'kubernetes', '--awsMetadata', 'simpledb', '--', t.dir, '5'],
      {
        env: { ...k.env, ...sdb.env() },
      },
    );
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toBe(0 + 1 + 4 + 9 + 16);
    expect((await traceLines(t.dir)).sort()).toEqual([
      'run fan',
      'run leaf 0',
      'run leaf 1',
      'run leaf 2',
      'run leaf 3',
      'run leaf 4',
      'run total',
    ]);
    // Workers wrote their records to SimpleDB (the leader alone would not update 7 jobs' records).
    expect(sdb.server.requestCounts()['PutAttributes'] ?? 0).toBeGreaterThanOrEqual(7);
    expect((await sdb.domains()).filter((d) => d.startsWith(`${name}--`))).toEqual([]);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);
});
