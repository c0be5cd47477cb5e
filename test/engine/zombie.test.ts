/**
 * A restart while a worker of the earlier leader still runs (a pod on a partitioned node): the
 * worker commits after the restart's load, and the store stays finishable with the right result.
 * Real processes throughout: two `toil run` leaders, a `toil worker` (what a worker pod runs),
 * an `aws:` job store on the test S3 server, whose fault injection holds the worker's commit.
 */
import { describe, expect, it } from '@jest/globals';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openJobStore } from '../../src/jobstore/open.js';
import { readWorkflowInfo } from '../../src/jobstore/workflowInfo.js';
import { startToil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { gated } from '../workflows/args.js';
import { useTestS3 } from '../s3/useTestS3.js';

const t = useTempStore();

describe('a restart beside a worker of the earlier leader', () => {
  const s3 = useTestS3();

  it('a commit that comes after the restart removed its new jobs is refused, and the workflow finishes right', async () => {
    const loc = `aws:us-east-1:zombie-${process.pid}`;
    const gateRuns = async () => (await traceLines(t.dir)).filter((l) => l === 'gate waiting').length;
    // The first leader: its worker waits at the gate; the leader dies with it.
    const first = startToil(['run', workflow('gated.ts'), loc, ...gated({ traceDir: t.dir })]);
    await waitFor(async () => (await gateRuns()) === 1, 60_000, 'the first gate');
    first.child.kill('SIGKILL');
    await first.done;
    const store = await openJobStore(loc);
    const rootId = (await readWorkflowInfo(store))!.info.rootJobId;

    // A worker of that leader runs the root again (as a pod on a partitioned node would): it
    // saves the three jobs it created, and its commit of the root is held by the network ...
    await s3.server.setFaults({ hangPutMatch: `jobs/${rootId}`, hangMs: 10_000 });
    await writeFile(path.join(t.dir, 'go'), '');
    const zombie = startToil(['worker', loc, rootId]);
    const listed = async () => {
      let n = 0;
      for await (const _ of store.listJobs()) n++;
      return n;
    };
    await waitFor(async () => (await listed()) === 4, 60_000, "the worker's new jobs");
    // ... and it stops right there, its commit on the wire, until the restart has loaded.
    zombie.child.kill('SIGSTOP');
    await s3.server.setFaults({});
    await rm(path.join(t.dir, 'go'));
    const second = startToil(['run', workflow('gated.ts'), loc, '--restart']);
    try {
      await waitFor(async () => (await gateRuns()) === 3, 60_000, 'the restarted gate (the worker ran the second)');
      expect(await listed()).toBe(1); // the worker's new jobs were orphans: deleted

      zombie.child.kill('SIGCONT');
      const z = await zombie.done;
      expect(z.stderr).toMatch(/was changed by another attempt; discarding this attempt's result/);
      expect(z.code).toBe(3);

      await writeFile(path.join(t.dir, 'go'), '');
      const r = await second.done;
      expect(r.stderr).not.toMatch(/ERROR/);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe(10);
      expect([await t.count('leaf-0'), await t.count('leaf-1')]).toEqual([1, 1]);
    } finally {
      zombie.child.kill('SIGKILL');
      second.child.kill('SIGKILL');
    }
  }, 240_000);
});
