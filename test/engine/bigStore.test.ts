/**
 * A store of many finished job records is opened by `toil run --restart`, `toil status` and
 * `toil clean` in a heap (`--max-old-space-size`) smaller than the records take together, on the
 * file store and on the S3 store: nothing holds every record at once. The records are written
 * straight through the job store's API under a finished one-job workflow's root, as a workflow
 * with that many children would leave them (a real run of that size is a benchmark's).
 *
 * On the file store 10,000 records of 10 kB results (100 MB together) by default, so that it
 * runs in well under a minute on a loaded 2-core machine; TOIL_BIG_STORE_RECORDS=100000 makes it
 * 100,000 (1 GB). On S3, where each record is a request to the test server, a fifth as many records
 * with results five times the size: the same 100 MB, in several listing pages.
 */
import { describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit } from '../../src/concurrency.js';
import { FileJobStore } from '../../src/jobstore/file/fileJobStore.js';
import { openJobStore } from '../../src/jobstore/open.js';
import type { JobStore } from '../../src/jobstore/types.js';
import { readWorkflowInfo } from '../../src/jobstore/workflowInfo.js';
import { sampleRecord } from '../jobstore/conformance.js';
import { toil } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useTestS3Pair } from '../s3/useTestS3Pair.js';

const RECORDS = Number(process.env['TOIL_BIG_STORE_RECORDS'] ?? 10_000);
/** Each record's result: a finished job's value, as real records carry one. */
const RESULT_BYTES = 10_000;
/** The heap each command gets: the records' results alone take more. */
const HEAP_MIB = 96;
/** Generous: about a minute on a loaded 2-core machine at the default size. */
const TIMEOUT_MS = 300_000 * Math.max(1, RECORDS / 10_000);

const t = useTempStore();
const s3 = useTestS3Pair();

const WORKFLOW = `
  import { defineJob } from 'toil-ts';
  const one = defineJob('one', async () => 'finished');
  export default function workflow() { return one(); }
`;

interface Big {
  locator: string;
  store: (l: string) => Promise<JobStore>;
  env: NodeJS.ProcessEnv;
  records: number;
}

/** A finished workflow in `locator` whose root has `records` done children, RECORDS × RESULT_BYTES of results in all. */
async function bigStore({ locator, store, env, records }: Big): Promise<string> {
  const wf = path.join(t.dir, 'one.ts');
  await writeFile(wf, WORKFLOW);
  const first = await toil(['run', wf, locator, '--clean', 'never'], { env });
  expect(first.stderr).not.toMatch(/ERROR/);
  expect(first.code).toBe(0);
  const s = await store(locator);
  const rootId = (await readWorkflowInfo(s))!.info.rootJobId;
  const result = 'r'.repeat((RESULT_BYTES * RECORDS) / records);
  const ids = Array.from({ length: records }, (_, i) => `leaf-${i.toString(36).padStart(10, '0')}`);
  await mapLimit(ids, 64, (id, i) =>
    s.createJob(
      sampleRecord(id, { name: 'leaf', state: 'done', result: `${i}:${result}`, predecessors: [rootId], remainingTries: 2, attempts: 1 }),
    ),
  );
  const root = await s.loadJob(rootId);
  await s.updateJob({ ...root.value, children: ids }, root.version);
  return wf;
}

async function opensInSmallHeap(big: Big): Promise<void> {
  const { locator, store, records } = big;
  const wf = await bigStore(big);
  const env = { ...big.env, NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}` };
  const restart = await toil(['run', wf, locator, '--restart', '--clean', 'never', '--logLevel', 'info'], { env });
  expect(restart.stderr).not.toMatch(/heap out of memory/);
  expect(restart.code).toBe(0);
  expect(JSON.parse(restart.stdout)).toBe('finished');
  const status = await toil(['status', locator, '--json'], { env });
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ completed: true, counts: { total: records + 1, done: records + 1, failed: 0 } });
  const clean = await toil(['clean', locator], { env });
  expect(clean.code).toBe(0);
  expect(await (await store(locator)).exists()).toBe(false);
}

describe('a store of many finished records, in a heap smaller than they are together', () => {
  it(
    'on the file store: --restart, status and clean',
    async () => {
      await opensInSmallHeap({ locator: t.store, store: async (l) => new FileJobStore(l, { fsync: false }), env: {}, records: RECORDS });
    },
    TIMEOUT_MS,
  );

  it(
    'on the S3 store: --restart, status and clean',
    async () => {
      await opensInSmallHeap({ locator: s3.locator(), store: (l) => openJobStore(l), env: s3.env(s3.cond), records: RECORDS / 5 });
    },
    TIMEOUT_MS,
  );
});
