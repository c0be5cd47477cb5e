/**
 * The batch system conformance suite: what every batch system (src/batch/types.ts) promises,
 * checked with real workers running real jobs against a real job store. Call
 * `describeBatchSystemConformance(name, factory)` from a batch system's test file; `factory`
 * gives a fresh harness per test: a job store the workers can reach and a way to make the
 * batch system under test for a workflow in it.
 *
 * The contract:
 * - a batch job issued ends once, with its outcome and exit code, and the job store then holds
 *   the job's result; several issued at once all end, each under its own batch job id;
 * - `issuedCount()` counts batch jobs issued and not yet reported ended; `runningCount()` never
 *   exceeds it;
 * - `kill()` of a running batch job ends it promptly with outcome `killed`, not counted as an
 *   attempt, and the job does not run on;
 * - a job that needs more than the batch system can ever give is refused — `checkFits` throws
 *   a ResourceError — or, where only the cluster can tell, ends for good (`final`) without
 *   running; either way the message names what the job asks for;
 * - a worker that dies (process.exit, SIGKILL) is reported as `failed` with its exit code
 *   (128 + 9 for SIGKILL), not as a success and not as a hang;
 * - `shutdown()` stops whatever still runs and leaves no worker behind.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import type { BatchJobEnd, BatchJobRequest, BatchSystem } from '../../src/batch/types.js';
import { ResourceError } from '../../src/errors.js';
import { planSave } from '../../src/job/graph.js';
import { jobInternals, type Job } from '../../src/job/job.js';
import { resolveRequirements } from '../../src/job/requirements.js';
import type { ResolvedRequirements } from '../../src/job/types.js';
import type { JobStore } from '../../src/jobstore/types.js';
import { writeWorkflowInfo, type WorkflowInfo } from '../../src/jobstore/workflowInfo.js';
import { bundleSharedName, loadBundleCode } from '../../src/worker/loadBundle.js';
import { bundleWorkflow, type Bundle } from '../../src/workflow/bundle.js';

const JOBS_MODULE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'jobs.ts');

/** What a batch system's test file provides, fresh for each test. */
export interface BatchHarness {
  /** A job store the workers can reach; not yet created. */
  store: JobStore;
  /** A directory that the test and the workers (processes or pods) both see. */
  sharedDir: string;
  /** Makes the batch system under test for workflow `workflowId` in `store`. */
  makeBatch(workflowId: string): Promise<BatchSystem>;
  /** Requirements this batch system can never meet, and what its refusal names. */
  beyondLimits: { requirements: Partial<ResolvedRequirements>; names: RegExp };
  /** Workers (processes or pods) of this batch system still alive. */
  leftovers(): Promise<number>;
  cleanup?(): Promise<void>;
}

export type BatchHarnessFactory = () => Promise<BatchHarness>;

/** How long a batch job may take to end once it should (worker start included). */
export interface ConformanceTimes {
  /** From issue to the end of a trivial job. */
  endMs: number;
  /** From kill to the reported end. */
  killMs: number;
}

type JobFactories = {
  answer: (value: number) => Job<number>;
  nap: (dir: string, name: string, ms: number) => Job<number>;
  exitWith: (code: number) => Job<never>;
  killSelf: () => Job<string>;
};

const DEFAULTS = { cores: 0.1, memory: 256 * 1024 * 1024, disk: 64 * 1024 * 1024, preemptible: false };

/** The jobs module's job factories, with the engine's registry and Job class of this process. */
async function loadJobs(bundle: Bundle): Promise<JobFactories> {
  const mod = (await loadBundleCode(bundle.hash, bundle.code)).module;
  for (const name of ['answer', 'nap', 'exitWith', 'killSelf']) {
    if (typeof mod[name] !== 'function') throw new Error(`${JOBS_MODULE} does not export the job '${name}'`);
  }
  return mod as unknown as JobFactories;
}

/** A workflow in the harness's store: jobs are saved as a leader would, then issued. */
class Workflow {
  readonly id = randomUUID();
  constructor(
    readonly store: JobStore,
    private readonly bundle: Bundle,
  ) {}

  async create(): Promise<void> {
    await this.store.create();
    await this.store.writeShared(bundleSharedName(this.bundle.hash), this.bundle.code);
    const info: WorkflowInfo = {
      workflowId: this.id,
      rootJobId: 'none',
      bundleHash: this.bundle.hash,
      workflowFile: JOBS_MODULE,
      createdAt: new Date().toISOString(),
      defaults: DEFAULTS,
      exports: [],
    };
    await writeWorkflowInfo(this.store, info);
  }

  /** Saves a job and returns the request that issues it. */
  async request(job: Job<unknown>, requirements: Partial<ResolvedRequirements> = {}): Promise<BatchJobRequest> {
    const plan = planSave({ roots: [job] });
    for (const r of plan.records) await this.store.createJob(r);
    const st = jobInternals(job);
    const resolved = { ...resolveRequirements(st.requirements, DEFAULTS), ...requirements };
    const jobId = st.id!;
    return {
      jobId,
      jobName: st.name,
      requirements: resolved,
      worker: {
        locator: this.store.locator,
        jobId,
        workflow: { workflowId: this.id, bundleHash: this.bundle.hash, defaults: DEFAULTS },
        allocated: resolved,
      },
    };
  }
}

/** Ends reported within `ms`, until `n` have come. */
async function collectEnds(batch: BatchSystem, n: number, ms: number): Promise<BatchJobEnd[]> {
  const ends: BatchJobEnd[] = [];
  const until = Date.now() + ms;
  while (ends.length < n && Date.now() < until) {
    const end = await batch.nextEnd(Math.min(500, until - Date.now()));
    if (end) ends.push(end);
  }
  return ends;
}

async function nextEnd(batch: BatchSystem, ms: number): Promise<BatchJobEnd> {
  const [end] = await collectEnds(batch, 1, ms);
  if (!end) throw new Error(`no batch job ended within ${ms} ms`);
  return end;
}

async function waitForFile(file: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${path.basename(file)} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForNone(leftovers: () => Promise<number>, ms: number): Promise<number> {
  const until = Date.now() + ms;
  let n = await leftovers();
  while (n > 0 && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    n = await leftovers();
  }
  return n;
}

export function describeBatchSystemConformance(name: string, factory: BatchHarnessFactory, times: ConformanceTimes): void {
  describe(`batch system conformance: ${name}`, () => {
    let bundle: Bundle;
    let jobs: JobFactories;
    let h: BatchHarness;
    let wf: Workflow;
    let batch: BatchSystem;
    let dir: string;

    beforeAll(async () => {
      bundle = await bundleWorkflow(JOBS_MODULE);
      jobs = await loadJobs(bundle);
    });
    beforeEach(async () => {
      h = await factory();
      wf = new Workflow(h.store, bundle);
      await wf.create();
      dir = await mkdtemp(path.join(h.sharedDir, 'conf-'));
      // a backend's workers may run as another user (Kubernetes: the image's, 1000)
      await chmod(dir, 0o777);
      batch = await h.makeBatch(wf.id);
    });
    afterEach(async () => {
      await batch?.shutdown();
      await h.store.destroy().catch(() => undefined);
      await h.cleanup?.();
      await rm(dir, { recursive: true, force: true });
    });

    it('runs a batch job to its end: exit code 0, and the job store holds the result', async () => {
      const req = await wf.request(jobs.answer(42));
      const id = await batch.issue(req);
      expect(batch.issuedCount()).toBe(1);
      const end = await nextEnd(batch, times.endMs);
      expect(end).toMatchObject({ batchJobId: id, jobId: req.jobId, outcome: 'succeeded', exitCode: 0, countsAsAttempt: true });
      const rec = (await h.store.loadJob(req.jobId)).value;
      expect(rec.state).toBe('done');
      expect(rec.result).toBe(42);
      expect(batch.issuedCount()).toBe(0);
      expect(await batch.nextEnd(300)).toBeUndefined();
    });

    it('runs several batch jobs issued at once: each ends once, under its own id', async () => {
      const values = [1, 2, 3, 4];
      const reqs = await Promise.all(values.map((v) => wf.request(jobs.answer(v))));
      const ids = [];
      for (const r of reqs) ids.push(await batch.issue(r));
      expect(new Set(ids).size).toBe(values.length);
      expect(batch.issuedCount()).toBe(values.length);
      expect(batch.runningCount()).toBeLessThanOrEqual(values.length);
      const ends = await collectEnds(batch, values.length, times.endMs * 2);
      expect(ends.map((e) => e.batchJobId).sort()).toEqual([...ids].sort());
      for (const e of ends) expect(e).toMatchObject({ outcome: 'succeeded', exitCode: 0 });
      const results = await Promise.all(reqs.map(async (r) => (await h.store.loadJob(r.jobId)).value.result));
      expect(results).toEqual(values);
      expect(batch.issuedCount()).toBe(0);
    });

    it('kills a running batch job promptly: outcome killed, not an attempt, and it does not run on', async () => {
      const napMs = times.killMs + 4000;
      const req = await wf.request(jobs.nap(dir, 'long', napMs));
      const id = await batch.issue(req);
      await waitForFile(path.join(dir, 'long.started'), times.endMs);
      const killedAt = Date.now();
      await batch.kill([id]);
      const end = await nextEnd(batch, times.killMs);
      expect(Date.now() - killedAt).toBeLessThan(times.killMs);
      expect(end).toMatchObject({ batchJobId: id, jobId: req.jobId, outcome: 'killed', countsAsAttempt: false });
      expect(batch.issuedCount()).toBe(0);
      expect(await waitForNone(h.leftovers, times.killMs)).toBe(0);
      await new Promise((r) => setTimeout(r, napMs - (Date.now() - killedAt) + 500));
      expect(existsSync(path.join(dir, 'long.finished'))).toBe(false);
      expect((await h.store.loadJob(req.jobId)).value.state).not.toBe('done');
    });

    it('refuses a job that needs more than it can ever give, naming what the job asks for', async () => {
      const req = await wf.request(jobs.answer(1), h.beyondLimits.requirements);
      let refused: unknown;
      try {
        batch.checkFits(req.requirements, `job '${req.jobName}' (${req.jobId})`);
      } catch (e) {
        refused = e;
      }
      if (refused !== undefined) {
        expect(refused).toBeInstanceOf(ResourceError);
        expect((refused as ResourceError).message).toMatch(h.beyondLimits.names);
        return;
      }
      // Only the cluster can tell: the batch job ends for good without running.
      const id = await batch.issue(req);
      const end = await nextEnd(batch, times.endMs * 2);
      expect(end).toMatchObject({ batchJobId: id, final: true });
      expect(end.outcome).not.toBe('succeeded');
      expect(end.message).toMatch(h.beyondLimits.names);
      expect((await h.store.loadJob(req.jobId)).value.state).toBe('pending');
    });

    it.each([
      ['process.exit(3)', 3],
      ['SIGKILL', 137],
    ])('reports a worker that dies by %s as failed with exit code %d', async (how, code) => {
      const req = await wf.request(how === 'SIGKILL' ? jobs.killSelf() : jobs.exitWith(3));
      const id = await batch.issue(req);
      const end = await nextEnd(batch, times.endMs);
      expect(end).toMatchObject({ batchJobId: id, jobId: req.jobId, outcome: 'failed', exitCode: code, countsAsAttempt: true });
      expect(end.final).not.toBe(true);
      expect((await h.store.loadJob(req.jobId)).value.state).not.toBe('done');
      // The batch system goes on working after a crash.
      const next = await wf.request(jobs.answer(5));
      await batch.issue(next);
      expect(await nextEnd(batch, times.endMs)).toMatchObject({ jobId: next.jobId, outcome: 'succeeded' });
    });

    it('shuts down leaving no worker running', async () => {
      const reqs = await Promise.all(['a', 'b'].map((n) => wf.request(jobs.nap(dir, n, 60_000))));
      for (const r of reqs) await batch.issue(r);
      await Promise.all(['a', 'b'].map((n) => waitForFile(path.join(dir, `${n}.started`), times.endMs)));
      expect(await h.leftovers()).toBeGreaterThan(0);
      await batch.shutdown();
      expect(await waitForNone(h.leftovers, times.killMs)).toBe(0);
      for (const r of reqs) expect((await h.store.loadJob(r.jobId)).value.state).toBe('pending');
    });
  });
}
