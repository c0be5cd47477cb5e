/**
 * A store of 100,000 finished job records is opened by `toil run --restart`, `toil status` and
 * `toil clean` in a small heap (`--max-old-space-size`), on the file store and on the S3 store:
 * nothing holds every record at once. The records are written straight through the job store's
 * API under a finished one-job workflow's root, as a workflow with 100,000 children would leave
 * them (a real run of that size is a benchmark's, not a test's).
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

const RECORDS = 100_000;
/** The heap each command gets: the 100,000 records as objects take several times this. */
const HEAP_MIB = 96;

const t = useTempStore();
const s3 = useTestS3Pair();

const WORKFLOW = `
  import { defineJob } from 'toil-ts';
  const one = defineJob('one', async () => 'finished');
  export default function workflow() { return one(); }
`;

/** A finished workflow in `locator` whose root has RECORDS done children. */
async function bigStore(locator: string, store: (l: string) => Promise<JobStore>, env: NodeJS.ProcessEnv): Promise<string> {
  const wf = path.join(t.dir, 'one.ts');
  await writeFile(wf, WORKFLOW);
  const first = await toil(['run', wf, locator, '--clean', 'never'], { env });
  expect(first.stderr).not.toMatch(/ERROR/);
  expect(first.code).toBe(0);
  const s = await store(locator);
  const rootId = (await readWorkflowInfo(s))!.info.rootJobId;
  const ids = Array.from({ length: RECORDS }, (_, i) => `leaf-${i.toString(36).padStart(10, '0')}`);
  await mapLimit(ids, 64, (id, i) =>
    s.createJob(sampleRecord(id, { name: 'leaf', state: 'done', result: i, predecessors: [rootId], remainingTries: 2, attempts: 1 })),
  );
  const root = await s.loadJob(rootId);
  await s.updateJob({ ...root.value, children: ids }, root.version);
  return wf;
}

async function opensInSmallHeap(locator: string, store: (l: string) => Promise<JobStore>, baseEnv: NodeJS.ProcessEnv): Promise<void> {
  const wf = await bigStore(locator, store, baseEnv);
  const env = { ...baseEnv, NODE_OPTIONS: `--max-old-space-size=${HEAP_MIB}` };
  const restart = await toil(['run', wf, locator, '--restart', '--clean', 'never', '--logLevel', 'info'], { env });
  expect(restart.stderr).not.toMatch(/heap out of memory/);
  expect(restart.code).toBe(0);
  expect(JSON.parse(restart.stdout)).toBe('finished');
  const status = await toil(['status', locator, '--json'], { env });
  expect(status.code).toBe(0);
  expect(JSON.parse(status.stdout)).toMatchObject({ completed: true, counts: { total: RECORDS + 1, done: RECORDS + 1, failed: 0 } });
  const clean = await toil(['clean', locator], { env });
  expect(clean.code).toBe(0);
  expect(await (await store(locator)).exists()).toBe(false);
}

describe('a store of 100,000 finished records, in a small heap', () => {
  it('on the file store: --restart, status and clean', async () => {
    await opensInSmallHeap(t.store, async (l) => new FileJobStore(l, { fsync: false }), {});
  }, 300_000);

  it('on the S3 store: --restart, status and clean', async () => {
    await opensInSmallHeap(s3.locator(), (l) => openJobStore(l), s3.env(s3.cond));
  }, 600_000);
});
