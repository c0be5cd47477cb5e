/**
 * The leader: owns one workflow's run. It loads the job graph from the job store, issues ready
 * jobs to the batch system, processes each batch job's end (reading the records the worker
 * committed), retries failed attempts with backoff, reruns checkpoints, relays worker log
 * messages, and ends with the root's value or a summary of what failed.
 */
import { mapLimit } from '../concurrency.js';
import { NotFoundError, ResourceError, errorMessage } from '../errors.js';
import type { BatchJobEnd, BatchSystem, WorkerRecords } from '../batch/types.js';
import { resolveRequirements, type RequirementDefaults } from '../job/requirements.js';
import { JobRecordSchema, type JobRecord, type StoredRequirements } from '../job/types.js';
import { z } from 'zod';
import type { JobStore } from '../jobstore/types.js';
import type { WorkflowInfo } from '../jobstore/workflowInfo.js';
import type { Logger } from '../log.js';
import { ActivityWriter } from './activity.js';
import { WorkerReports } from './workerReports.js';
import { FreshRecords } from './freshRecords.js';
import { asCreated, asReset, updateRecord } from './recordChanges.js';
import { CacheReport } from './cacheReport.js';
import { formatStats } from '../filestore/cacheRules.js';
import { backoffDelayMs, type BackoffPolicy } from '../backoff.js';
import { GraphState } from './graphState.js';
import { loadJobGraph } from './loadGraph.js';
import { chainDone, dueForReconcile, reconcileActions, type IssuedBatchJob } from './reconcile.js';
import { Progress, type ProgressCounts } from './progress.js';
import type { StatsRecorder } from './statsRecorder.js';

export const KILL_FILE = 'kill-request.json';

export interface LeaderConfig {
  retryCount: number;
  backoff: BackoffPolicy;
  /** Most batch jobs issued at once. */
  maxJobs: number;
  /** Most batch jobs issued and not running yet (default {@link ISSUE_AHEAD}). */
  issueAhead?: number;
  defaults: RequirementDefaults & { preemptible: boolean };
  workDir?: string;
  /** Copy every job's log to this directory. */
  writeLogs?: string;
  logger: Logger;
  /** Show a live status line (terminal) instead of periodic log lines. */
  tty: boolean;
  statusIntervalMs: number;
  /** How many trailing log lines to show per failed job. */
  logTailLines?: number;
  /** How often the leader's issued jobs are checked against the batch system and the job store (default 60 s; see `reconcile`). */
  reconcileIntervalMs?: number;
  /** Each attempt's account (--stats, --trace); its owner loads and closes it. */
  stats?: StatsRecorder;
}

/**
 * How many batch jobs the leader keeps issued beyond those running: ready jobs past that wait in
 * the graph's ready set (a few bytes each), not as requests queued in the batch system (a
 * kilobyte or so each, and work for every reconcile), so that a workflow of a million ready jobs
 * costs the batch system no more than ten thousand. Far more than a cluster starts at once.
 */
export const ISSUE_AHEAD = 10_000;

/** The default period of `reconcile`: as a controller's resync, rare enough to cost nothing noticeable. */
export const RECONCILE_INTERVAL_MS = 60_000;

export interface FailedJob {
  id: string;
  name: string;
  reason: string;
  /** The workflow's own stack frames of the error the job threw, when it threw one. */
  stack?: string | undefined;
  /** The last lines of its last attempt's log (without what `reason` and `stack` say). */
  logTail: string;
}

export type LeaderResult =
  | { ok: true; rootId: string; jobsRun: number }
  | { ok: false; failed: FailedJob[]; notRun: number; killed: boolean; reason?: string; jobsRun: number };

export class Leader {
  private graph: GraphState;
  private readonly issued = new Map<number, IssuedBatchJob>();
  /** Batch jobs whose ends are to be ignored (killed for a checkpoint rerun). */
  private readonly abandoned = new Set<number>();
  /** New jobs' records, handed to the worker of their first issue (freshRecords.ts). */
  private readonly fresh = new FreshRecords();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly failed = new Map<string, FailedJob>();
  private jobsRun = 0;
  private stopReason: { killed: boolean; reason: string; leaveJobs: boolean } | undefined;
  private wake: (() => void) | undefined;
  private readonly log: Logger;
  private readonly activity: ActivityWriter;
  private readonly cacheReport: CacheReport;
  private readonly reports: WorkerReports;

  constructor(
    private readonly store: JobStore,
    private readonly batch: BatchSystem,
    private readonly info: WorkflowInfo,
    private readonly config: LeaderConfig,
  ) {
    this.graph = new GraphState(config.retryCount + 1);
    this.log = config.logger;
    this.activity = new ActivityWriter(store);
    this.cacheReport = new CacheReport(store);
    this.reports = new WorkerReports(store, this.log, this.cacheReport, (m) => config.stats?.measured(m));
  }

  /**
   * Asks the leader to stop: no further job is issued, running jobs are killed (with
   * `leaveJobs`, left to the successor that took the workflow over) and the run ends as failed.
   */
  stop(reason: string, opts: { killed?: boolean; leaveJobs?: boolean } = {}): void {
    if (this.stopReason) return;
    this.stopReason = { killed: opts.killed ?? true, reason, leaveJobs: opts.leaveJobs ?? false };
    // The batch jobs end now, not when the loop next looks: it may be waiting on a create or a
    // job store request, and a pod has 30 s of grace (the batch system's shutdown comes first
    // and once; `run` waits for it).
    if (!this.stopReason.leaveJobs) void this.batch.shutdown().catch(() => undefined);
    this.wake?.();
  }

  /**
   * Loads the graph (loadGraph.ts): the records reachable from the root, orphans deleted; at a
   * restart, every unfinished record is written again first, so that no worker of an earlier
   * leader can still commit to it.
   */
  async load(opts: { restart: boolean }): Promise<void> {
    await this.cacheReport.load();
    await loadJobGraph(this.store, this.graph, { rootJobId: this.info.rootJobId, restart: opts.restart, log: this.log });
    this.graph.recompute();
  }

  /**
   * Running: batch jobs whose worker runs. Queued: ready to run (issued and not running yet, or
   * not issued for --maxJobs). Waiting: pending jobs not ready yet (on other jobs, or a retry's
   * backoff).
   */
  private counts(): ProgressCounts {
    const c = this.graph.counts();
    const running = this.batch.runningCount();
    const ready = this.graph.ready.size;
    return {
      done: c.done,
      running,
      queued: Math.max(0, c.issued - running) + ready,
      waiting: Math.max(0, c.pending - ready),
      failed: c.failed,
      total: c.total,
    };
  }

  /** What queued jobs wait for, in a few words, when some are queued: the batch system's account, retries, --maxJobs. */
  private waitingFor(): string | undefined {
    const parts: string[] = [];
    const batch = this.batch.waitingFor();
    if (batch) parts.push(batch);
    if (this.graph.ready.size > 0 && this.issued.size >= this.config.maxJobs)
      parts.push(`${this.graph.ready.size} held back by --maxJobs ${this.config.maxJobs}`);
    else if (this.graph.ready.size > 0 && this.aheadFull())
      parts.push(`${this.graph.ready.size} to be issued as the batch system's queue drains`);
    if (this.timers.size > 0) parts.push(`${this.timers.size} to be retried after a backoff`);
    return parts.length > 0 ? parts.join('; ') : undefined;
  }

  /**
   * Runs until the workflow finishes, fails, or is stopped. When it stops with batch jobs
   * still running (a stop request, a lost lease, an error), the batch system is shut down
   * before anything else: one bulk delete ends them all within a pod's grace period, and the
   * job store writes that can wait (messages, cache totals, activity) come after it.
   */
  async run(): Promise<LeaderResult> {
    const progress = new Progress(this.log, this.config.tty, this.config.statusIntervalMs);
    try {
      await this.loop(progress);
    } finally {
      for (const t of this.timers) clearTimeout(t);
      this.timers.clear();
      if (this.issued.size > 0) {
        await this.batch.shutdown({ leaveJobs: this.stopReason?.leaveJobs === true }).catch(() => undefined);
      }
      await this.activity.remove().catch(() => undefined);
    }
    await this.reports.relay();
    progress.finish(this.counts());
    await this.reportCache();
    return this.result();
  }

  private async loop(progress: Progress): Promise<void> {
    let lastHousekeeping = 0;
    let lastReconcile = Date.now();
    const reconcileMs = this.config.reconcileIntervalMs ?? RECONCILE_INTERVAL_MS;
    for (;;) {
      if (this.stopReason) return;
      await this.issueReady();
      if (this.issued.size === 0 && this.graph.ready.size === 0 && this.timers.size === 0) return;
      // A timer or a stop request ends the wait by aborting it, never by leaving it behind: an
      // end handed to a wait nobody listens to would be lost (endQueue.ts).
      const waiting = new AbortController();
      this.wake = () => waiting.abort();
      const end = await this.batch.nextEnd(500, waiting.signal);
      this.wake = undefined;
      if (this.stopReason) return;
      if (end) {
        await this.handleEnd(end);
        await this.takeEnded();
      }
      const now = Date.now();
      if (now - lastHousekeeping >= 1000) {
        lastHousekeeping = now;
        await this.housekeeping();
      }
      if (now - lastReconcile >= reconcileMs) {
        lastReconcile = now;
        await this.reconcile(now, reconcileMs);
      }
      progress.update(
        () => this.counts(),
        () => this.waitingFor(),
      );
    }
  }

  /** Takes whatever else has ended, without waiting. */
  private async takeEnded(): Promise<void> {
    for (let e = await this.batch.nextEnd(0); e && !this.stopReason; e = await this.batch.nextEnd(0)) await this.handleEnd(e);
  }

  /** The safety net under a lost end (reconcile.ts): the batch system's truth, then the job store's. */
  private async reconcile(now: number, periodMs: number): Promise<void> {
    await this.batch.resync();
    await this.takeEnded();
    const due = dueForReconcile(this.issued, now, periodMs);
    const debug = (m: string) => this.log.debug(m);
    const done = await mapLimit(due, 16, ([id, v]) =>
      this.batch.knows(id) ? chainDone(this.store, v.jobId, debug) : Promise.resolve(false),
    );
    for (const a of reconcileActions(due, { now, knows: (id) => this.batch.knows(id), done })) {
      if (this.stopReason || !this.issued.has(a.batchJobId)) continue;
      const what = `job '${this.graph.node(a.job.jobId)?.name ?? '?'}' (${a.job.jobId})`;
      const end = { batchJobId: a.batchJobId, jobId: a.job.jobId, exitCode: null };
      if (a.kind === 'lost') {
        this.log.warning(
          `batch job ${a.batchJobId} of ${what} ended, but its end never reached the leader; reading its outcome from the job store`,
        );
        await this.handleEnd({ ...end, outcome: 'failed', message: 'its end was lost', countsAsAttempt: false });
        continue;
      }
      const secs = Math.round((now - a.job.at) / 1000);
      this.log.warning(
        `${what} is done in the job store, but its batch job ${a.batchJobId} (issued ${secs}s ago) has not said it ended; taking it as done and ending the batch job`,
      );
      await this.handleEnd({ ...end, outcome: 'succeeded', exitCode: 0, countsAsAttempt: true });
      await this.batch.kill([a.batchJobId]);
    }
  }

  private result(): LeaderResult {
    const root = this.graph.node(this.info.rootJobId);
    if (!this.stopReason && root?.subtreeDone) return { ok: true, rootId: this.info.rootJobId, jobsRun: this.jobsRun };
    const c = this.graph.counts();
    const notRun = c.pending + c.issued;
    let reason = this.stopReason?.reason;
    if (!reason && this.failed.size === 0) {
      const stuck = this.graph.pending(5);
      reason = `no job can run: ${stuck.map((n) => `'${n.name}' (${n.id})`).join(', ')} wait on each other or on a job that never runs`;
    }
    return {
      ok: false,
      failed: [...this.failed.values()],
      notRun,
      killed: this.stopReason?.killed ?? false,
      jobsRun: this.jobsRun,
      ...(reason ? { reason } : {}),
    };
  }

  /** The node cache totals, at the end of the run: in the log and in the store for `toil status`. */
  private async reportCache(): Promise<void> {
    const totals = this.cacheReport.current;
    if (totals.hits + totals.misses > 0) this.log.info(`file cache: ${formatStats(totals)}`);
    await this.cacheReport.save().catch((e: unknown) => this.log.debug(`cannot record the cache totals: ${errorMessage(e)}`));
  }

  private async housekeeping(): Promise<void> {
    await this.reports.relay();
    await this.config.stats?.flush();
    await this.cacheReport.save().catch((e: unknown) => this.log.debug(`cannot record the cache totals: ${errorMessage(e)}`));
    const issued = [...this.issued.values()].map(({ jobId }) => ({ id: jobId, name: this.graph.node(jobId)?.name ?? '?' }));
    await this.activity
      .write(this.batch.runningCount(), issued)
      .catch((e: unknown) => this.log.debug(`cannot record the leader's activity: ${errorMessage(e)}`));
    try {
      if (await this.store.readShared(KILL_FILE)) this.stop(`stopped by 'toil kill'`);
    } catch (e) {
      this.log.debug(`cannot check for a kill request: ${errorMessage(e)}`);
    }
  }

  private aheadFull(): boolean {
    return this.issued.size - this.batch.runningCount() >= (this.config.issueAhead ?? ISSUE_AHEAD);
  }

  private async issueReady(): Promise<void> {
    if (this.stopReason) return;
    // Issuing removes a job from the ready set, which a Set's iteration allows.
    for (const id of this.graph.ready) {
      if (this.issued.size >= this.config.maxJobs || this.aheadFull() || this.stopReason) return;
      const node = this.graph.node(id);
      if (!node) continue;
      const requirements = resolveRequirements(node.requirements, this.config.defaults);
      const what = `job '${node.name}' (${id})`;
      try {
        this.batch.checkFits(requirements, what);
      } catch (e) {
        if (e instanceof ResourceError) {
          const message = e.message + defaultSizeHint(e, node.requirements);
          await this.failForGood(id, { reason: message, logTail: '' });
          continue;
        }
        throw e;
      }
      this.graph.markIssued(id);
      const record = this.fresh.take(id);
      const batchJobId = await this.batch.issue({
        jobId: id,
        jobName: node.name,
        requirements,
        worker: {
          locator: this.store.locator,
          jobId: id,
          workflow: {
            workflowId: this.info.workflowId,
            bundleHash: this.info.bundleHash,
            defaults: this.config.defaults,
            ...(this.info.caching ? { caching: this.info.caching } : {}),
            ...(this.info.measure ? { measure: true } : {}),
          },
          allocated: requirements,
          ...(this.config.workDir ? { workDir: this.config.workDir } : {}),
          ...(record ? { record } : {}),
        },
      });
      this.issued.set(batchJobId, { jobId: id, at: Date.now() });
      this.config.stats?.issued(batchJobId);
      this.log.debug(`issued ${what} as batch job ${batchJobId}`);
    }
  }

  private async handleEnd(end: BatchJobEnd): Promise<void> {
    const issued = this.issued.get(end.batchJobId);
    this.issued.delete(end.batchJobId);
    if (this.abandoned.delete(end.batchJobId) || !issued) return;
    // Follow the chain of jobs this batch job ran: each done record names the next one.
    const carried = carriedRecords(end.records);
    let jobId: string | undefined = issued.jobId;
    while (jobId !== undefined) {
      let rec: JobRecord;
      try {
        rec = carried.records.get(jobId) ?? (await this.store.loadJob(jobId)).value;
      } catch (e) {
        if (e instanceof NotFoundError) return; // removed by a checkpoint rerun
        throw e;
      }
      if (rec.state === 'done') {
        if (this.graph.node(jobId)?.status === 'done') return;
        await this.recordAttempt(rec, end, true);
        await this.completed(rec, carried);
        jobId = rec.chainedInto;
        continue;
      }
      // Not done: this job's attempt failed (for a chained job, the batch job failed while on it).
      await this.attemptFailed(jobId, end);
      return;
    }
  }

  private async recordAttempt(job: Pick<JobRecord, 'id' | 'name' | 'requirements'>, end: BatchJobEnd, ok: boolean): Promise<void> {
    const requested = resolveRequirements(job.requirements, this.config.defaults);
    await this.config.stats?.ended({ id: job.id, name: job.name, requested }, end, ok);
  }

  /** A job done; `carried`: records its worker sent with its end (the ones not there are read). */
  private async completed(rec: JobRecord, carried: Carried): Promise<void> {
    this.jobsRun++;
    const spawned = rec.spawned ?? [];
    const fresh = spawned.filter((id) => !this.graph.has(id));
    const records = await mapLimit(fresh, 32, async (id) => carried.records.get(id) ?? (await this.store.loadJob(id)).value);
    // A new job may already be done (a worker chained into it): add it as it was created;
    // its own completion is processed when the chain reaches it.
    for (const r of records) {
      this.graph.add(asCreated(r));
      const version = carried.versions[r.id];
      if (version !== undefined) this.fresh.add(r, version);
    }
    if (rec.filesToDelete) await Promise.all(rec.filesToDelete.map((f) => this.store.deleteFile(f).catch(() => undefined)));
    this.graph.markDone(rec);
    this.reports.forget(rec.id);
    if (this.config.writeLogs) await this.reports.copyLog(this.config.writeLogs, rec);
    this.log.debug(`job '${rec.name}' (${rec.id}) done${spawned.length ? `, created ${spawned.length} job(s)` : ''}`);
  }

  private async attemptFailed(jobId: string, end: BatchJobEnd): Promise<void> {
    const node = this.graph.node(jobId);
    if (!node) return;
    const told = await this.reports.toldFailure(jobId);
    const logTail = (lines: number) => this.reports.logTail({ id: jobId, name: node.name }, { end, told, lines });
    const reason =
      told?.text ??
      end.message ??
      (end.outcome === 'succeeded' ? 'the worker ended without recording a result' : `the worker exited with code ${end.exitCode}`);
    if (end.outputIsLog && end.outputTail) await this.store.writeJobLog(jobId, end.outputTail).catch(() => undefined);
    await this.recordAttempt({ id: jobId, name: node.name, requirements: node.requirements }, { ...end, message: reason }, false);
    if (this.config.writeLogs) await this.reports.copyLog(this.config.writeLogs, { id: jobId, name: node.name });
    if (end.outcome === 'killed' && this.stopReason) {
      this.graph.markRetrying(jobId);
      this.graph.endWait(jobId);
      return;
    }
    const counts = end.countsAsAttempt;
    const remaining = counts ? node.remainingTries - 1 : node.remainingTries;
    const what = `job '${node.name}' (${jobId})`;
    if (remaining > 0 && end.final !== true) {
      this.graph.setRemainingTries(jobId, remaining);
      await this.persist(jobId, (r) => ({ ...r, remainingTries: remaining, failure: reason, attempts: r.attempts + (counts ? 1 : 0) }));
      const retryNumber = this.config.retryCount + 1 - remaining;
      const delay = counts ? backoffDelayMs(retryNumber, this.config.backoff) : 0;
      // The message first (in the reason), then where it came from: the stack, or the log's end.
      const detail = told?.stack ?? (await logTail(5));
      this.log.warning(
        `${what} failed: ${reason}; ${counts ? '' : 'not counted against its tries; '}retrying in ${(delay / 1000).toFixed(1)}s (${remaining} ${remaining === 1 ? 'try' : 'tries'} left)` +
          (detail ? `\n${indent(detail.split('\n').slice(0, 5))}` : ''),
      );
      this.graph.markRetrying(jobId);
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.graph.endWait(jobId);
        this.wake?.();
      }, delay);
      this.timers.add(t);
      return;
    }
    await this.failForGood(jobId, { reason, stack: told?.stack, logTail: await logTail(this.config.logTailLines ?? 20) });
  }

  /**
   * A job that failed with no tries left: a checkpoint above it runs again, or the job is failed
   * for good. Its error is told once, in the summary at the end (failureSummary in toil.ts).
   */
  private async failForGood(jobId: string, why: Omit<FailedJob, 'id' | 'name'>): Promise<void> {
    const { reason } = why;
    const node = this.graph.node(jobId);
    if (!node) return;
    this.graph.setRemainingTries(jobId, 0);
    await this.persist(jobId, (r) => ({ ...r, state: 'failed', remainingTries: 0, failure: reason }));
    this.graph.markFailed(jobId);
    const checkpoint = this.graph.checkpointAbove(jobId);
    if (checkpoint) {
      this.log.warning(`job '${node.name}' (${jobId}) failed: ${reason}; rerunning checkpoint ${checkpoint}`);
      await this.rerunCheckpoint(checkpoint);
      return;
    }
    this.failed.set(jobId, { id: jobId, name: node.name, ...why });
    this.log.error(`job '${node.name}' (${jobId}) failed for good: the summary at the end says why`);
  }

  /** Discards everything below a checkpoint and runs it again. */
  private async rerunCheckpoint(id: string): Promise<void> {
    const cp = this.graph.node(id);
    if (!cp) return;
    const below = this.graph.subtreeOf(id);
    const keep = this.graph.subtreeOf(id, true);
    const running = [...this.issued.entries()].filter(([, v]) => below.has(v.jobId)).map(([k]) => k);
    for (const b of running) this.abandoned.add(b);
    if (running.length > 0) await this.batch.kill(running);
    // Files written by the discarded runs are garbage: the checkpoint writes its own again.
    await mapLimit([id, ...below], 8, (jid) => this.store.deleteFilesOf(jid));
    for (const jid of below) {
      this.failed.delete(jid);
      if (!keep.has(jid)) {
        this.fresh.forget(jid);
        await this.store.deleteJob(jid);
        this.graph.remove(jid);
      }
    }
    const updated: JobRecord[] = [];
    for (const jid of keep) updated.push(await this.persist(jid, (r) => asReset(r, null)));
    updated.push(await this.persist(id, (r) => asReset(r, cp.remainingTries - 1)));
    for (const r of updated) {
      this.graph.remove(r.id);
      this.graph.add(r);
    }
    this.graph.recompute();
  }

  private persist(id: string, change: (r: JobRecord) => JobRecord): Promise<JobRecord> {
    this.fresh.forget(id);
    return updateRecord(this.store, id, change);
  }
}

/**
 * When a job that did not say how much memory or disk it needs does not fit: it asked for the
 * default, which every such job asks for (`2Gi` unless --defaultMemory/--defaultDisk say, and
 * `G` is 10⁹ bytes while `Gi` is 2³⁰: --maxMemory 2G is less than 2Gi).
 */
function defaultSizeHint(e: ResourceError, asked: StoredRequirements): string {
  const resource = e.context['resource'];
  if ((resource !== 'memory' && resource !== 'disk') || asked[resource] !== undefined) return '';
  const flag = resource === 'memory' ? '--defaultMemory' : '--defaultDisk';
  return `; the job did not say, so it asks for ${flag} (2Gi unless set), as every job that does not say does: lower ${flag}, raise the maximum, or give the job .require({ ${resource} }) (G is 10⁹ bytes, Gi is 2³⁰)`;
}

function indent(lines: string[]): string {
  return lines.map((l) => `    | ${l}`).join('\n');
}

const CarriedSchema = z.object({
  done: z.array(JobRecordSchema),
  created: z.array(JobRecordSchema),
  versions: z.record(z.string(), z.string()).default({}),
});

/** What a warm worker's end carried: records by id, and the versions of the created ones. */
interface Carried {
  records: ReadonlyMap<string, JobRecord>;
  versions: Readonly<Record<string, string>>;
}

/**
 * The records a warm worker sent with its end, by id: the done ones as committed, the created
 * ones as written. Ones that do not parse are not used (they are read from the job store).
 */
function carriedRecords(records: WorkerRecords | undefined): Carried {
  const parsed = records ? CarriedSchema.safeParse(records) : undefined;
  const out = new Map<string, JobRecord>();
  if (!parsed?.success) return { records: out, versions: {} };
  for (const r of parsed.data.created) out.set(r.id, r);
  // A created job that was then chained into is carried done: that version wins (and its
  // creation's version is stale).
  const versions = { ...parsed.data.versions };
  for (const r of parsed.data.done) {
    out.set(r.id, r);
    delete versions[r.id];
  }
  return { records: out, versions };
}
