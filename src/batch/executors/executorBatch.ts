/**
 * Executor mode: a batch system that runs jobs on executors — long-lived batch jobs of another
 * batch system (on Kubernetes, worker Jobs with the same labels, service account and volumes
 * as a job's own) — instead of a batch job each. How jobs are packed is shapes.ts's; how they
 * reach an executor and come back is protocol.ts's. The rules here:
 *
 * - **Queue and pool.** A job of a shape waits in the leader's queue until an executor of that
 *   shape has a free slot. Executors are made while jobs of a shape wait, as many as
 *   poolSizing.ts says (the first at once, more once the jobs' pace says they are needed), with
 *   at most `MAX_STARTING` not started at once and `maxExecutors` in all. Its first message is
 *   written before its batch job is issued; it is given jobs once it says it has started, so
 *   jobs go to whichever executor has a free slot first, never to a pod still waiting for a
 *   node. An executor with no jobs for `idleMs` is told to stop (and exits 0), and so is one
 *   with no jobs when an executor of another shape is made (it may need the room); the pool
 *   shrinks to nothing when nothing waits.
 * - **Every ending explained, per job.** A job's end on an executor is the executor's report of
 *   its process (exit code, `process.exit`, a crash, memory over its slot, killed). An executor
 *   that ends with jobs (its pod deleted, evicted, preempted, lost, killed as a whole, or its
 *   process gone) ends each of them with the executor's reason, not counted against their tries
 *   — the job did nothing wrong — within the disruption bound; one that ends before it started
 *   ends the jobs waiting for its shape with its verdict, unless one of the shape has started, so
 *   no job waits for ever on an executor that cannot start. The rules: executorEnds.ts.
 * - **Short jobs queue on their executor**, beyond its slots (poolSizing.ts).
 * - **A pod of its own**: jobs shapes.ts does not pack run as batch jobs of the inner batch
 *   system, as without executors.
 * - **Stopping.** `kill` reaches a job wherever it is; `shutdown` is the inner batch system's,
 *   whose one bulk delete ends every executor with the rest.
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../../concurrency.js';
import { ConflictError, errorMessage } from '../../errors.js';
import type { ResolvedRequirements } from '../../job/types.js';
import type { JobStore } from '../../jobstore/types.js';
import type { Logger } from '../../log.js';
import { EndQueue } from '../endQueue.js';
import type { BatchJobEnd, BatchJobRequest, BatchSystem, ShutdownOptions } from '../types.js';
import { BUSY_POLL_MS, ENDS_POLL_MS, HEARTBEAT_MS, MAX_STARTING, POLL_MS, QUIET_POLL_MS, type UpMessage } from './protocol.js';
import { ExecutorEnds, said, type InnerEnd } from './executorEnds.js';
import { emptyOutbox, mergeOutbox, newExecutorRecord, type Executor, type Held } from './executorRecord.js';
import { PoolGrowth } from './poolGrowth.js';
import { shapeOf, type ExecutorBounds, type Shape } from './shapes.js';

export interface ExecutorBatchOptions {
  store: JobStore;
  logger: Logger;
  bounds: ExecutorBounds;
  /** Most executors at once (default 32). */
  maxExecutors?: number;
  /** An executor with no jobs this long is told to stop (default 60 s). */
  idleMs?: number;
  /** An executor that hears nothing from its leader this long exits (two lease periods). */
  silenceMs: number;
  /** How many times a job may lose its executor without using a try (default 5). */
  maxDisruptions?: number;
  /** The executor's work directory, when the inner batch system's workers are told one. */
  workDir?: string;
}

/** While jobs wait, the pool is looked at at least this often (not only when something happens). */
const REPUMP_MS = 250;

export class ExecutorBatchSystem implements BatchSystem {
  readonly name: string;
  private readonly ends = new EndQueue();
  private queue: Held[] = [];
  private readonly executors = new Map<string, Executor>();
  private readonly byInnerId = new Map<number, Executor>();
  /** Jobs in a pod of their own: the inner batch system's id → ours, and back. */
  private readonly own = new Map<number, Pick<Held, 'id' | 'req'>>();
  private readonly ownInnerId = new Map<number, number>();
  private readonly verdicts: ExecutorEnds;
  /** The paces of jobs and the pool's growth, per shape (poolGrowth.ts). */
  private readonly growth: PoolGrowth;
  private readonly stopping = new AbortController();
  private readonly prefix = randomBytes(4).toString('hex');
  private nextId = 1;
  private pumpedAt = 0;
  private nextExecutor = 1;
  private polling = false;
  private readonly timer: NodeJS.Timeout;
  private readonly reading: Promise<void>;

  constructor(
    private readonly inner: BatchSystem,
    private readonly opts: ExecutorBatchOptions,
  ) {
    this.name = inner.name;
    this.growth = new PoolGrowth(opts.logger);
    this.verdicts = new ExecutorEnds(opts.maxDisruptions ?? 5);
    this.timer = setInterval(() => void this.poll(), BUSY_POLL_MS);
    this.timer.unref();
    this.reading = this.readInnerEnds();
  }

  checkFits(req: ResolvedRequirements, what: string): void {
    this.inner.checkFits(req, what);
  }

  async issue(req: BatchJobRequest): Promise<number> {
    const id = this.nextId++;
    const shape = this.shapeFor(req.requirements);
    if (!shape) {
      const innerId = await this.inner.issue(req);
      this.own.set(innerId, { id, req });
      this.ownInnerId.set(id, innerId);
      return id;
    }
    this.queue.push({ id, req, shape });
    this.pump();
    return id;
  }

  /**
   * The shape a job runs in: shapes.ts's, with as many slots as the inner batch system can give
   * one executor (a machine with two cores takes executors of two one-core slots). Undefined: a
   * batch job of its own.
   */
  private shapeFor(req: ResolvedRequirements): Shape | undefined {
    for (let slots = this.opts.bounds.slots; slots >= 1; slots--) {
      const shape = shapeOf(req, { ...this.opts.bounds, slots });
      if (!shape) return undefined;
      try {
        this.inner.checkFits(shape.pod, 'an executor');
        return shape;
      } catch {
        /* fewer slots */
      }
    }
    return undefined;
  }

  /**
   * Gives queued jobs the free slots of started executors, and makes the executors poolSizing.ts
   * says the jobs still waiting need.
   */
  private pump(): void {
    if (this.stopping.signal.aborted) return;
    this.pumpedAt = Date.now();
    const touched = new Set<Executor>();
    const open = new Set<Executor>();
    // Shape and name of jobs no executor had room for: executors only fill up during a round.
    const noRoom = new Set<string>();
    const waiting = new Map<string, { shape: Shape; byName: Map<string, number> }>();
    const left: Held[] = [];
    for (const held of this.queue) {
      const key = `${held.shape.key}|${held.req.jobName}`;
      const ex = noRoom.has(key) ? undefined : this.freeExecutor(held, open);
      if (!ex) {
        noRoom.add(key);
        const w = waiting.get(held.shape.key) ?? { shape: held.shape, byName: new Map<string, number>() };
        w.byName.set(held.req.jobName, (w.byName.get(held.req.jobName) ?? 0) + 1);
        waiting.set(held.shape.key, w);
        left.push(held);
        continue;
      }
      held.assignedAt = Date.now();
      ex.jobs.set(held.id, held);
      ex.outbox.assign.push({
        key: held.id,
        args: held.req.worker,
        memoryLimit: held.shape.slot.memory,
        diskLimit: held.shape.slot.disk,
      });
      touched.add(ex);
    }
    this.queue = left;
    for (const ex of touched) void this.send(ex);
    for (const { shape, byName } of waiting.values()) {
      const pool = this.poolOf(shape);
      const plan = this.growth.plan(shape, pool, byName);
      // A growth undone: the newest executors finish the jobs they hold and stop.
      for (const ex of pool.slice(pool.length - plan.undo)) this.retire(ex, 'its growth did not pay');
      let added = 0;
      for (; added < plan.add; added++) {
        const ex = this.newExecutor(shape);
        if (!ex) break;
        void this.send(ex);
      }
      this.growth.made(shape.key, plan, added);
    }
  }

  /** The executors of a shape, started or starting, not told to stop. */
  private poolOf(shape: Shape): Executor[] {
    return [...this.executors.values()].filter((ex) => ex.shape.key === shape.key && !ex.stopping && !ex.ended);
  }

  /**
   * A started executor of this shape with room for a job. One with jobs queued beyond its slots
   * is given more only once a slot's worth of room is free, so a round carries several (`open`:
   * executors this round already gives jobs to, filled to their capacity).
   */
  private freeExecutor(held: Held, open: Set<Executor>): Executor | undefined {
    const shape = held.shape;
    const capacity = this.growth.capacity(shape.key, shape.slots, held.req.jobName);
    for (const ex of this.executors.values()) {
      if (ex.shape.key !== shape.key || !ex.started || ex.stopping || ex.ended || ex.jobs.size >= capacity) continue;
      if (open.has(ex) || ex.jobs.size < shape.slots || capacity - ex.jobs.size >= shape.slots) {
        open.add(ex);
        return ex;
      }
    }
    return undefined;
  }

  /** A new executor of a shape, issued once its first message is written; undefined at the bound. */
  private newExecutor(shape: Shape): Executor | undefined {
    if (this.executors.size >= (this.opts.maxExecutors ?? 32)) return undefined;
    let starting = 0;
    for (const ex of this.executors.values()) if (!ex.started) starting++;
    if (starting >= MAX_STARTING) return undefined;
    const name = `${this.prefix}x${this.nextExecutor++}`;
    const ex = newExecutorRecord(this.opts.store, name, shape);
    // Executors of other shapes with nothing to do would hold room the new one may need.
    for (const other of this.executors.values())
      if (other.shape.key !== shape.key && other.jobs.size === 0 && !other.stopping) this.retire(other);
    this.executors.set(name, ex);
    this.opts.logger.debug(`executor ${name}: ${shape.slots} slot(s) of ${shape.key}`);
    return ex;
  }

  /** Issues an executor's batch job (after its first message is written). */
  private async launch(ex: Executor): Promise<void> {
    const jobId = `executor-${ex.name}`;
    try {
      ex.innerId = await this.inner.issue({
        jobId,
        jobName: 'executor',
        requirements: ex.shape.pod,
        worker: {
          locator: this.opts.store.locator,
          jobId,
          executor: ex.name,
          ...(this.opts.workDir ? { workDir: this.opts.workDir } : {}),
        },
      });
      this.byInnerId.set(ex.innerId, ex);
    } catch (e) {
      const end = {
        outcome: 'failed',
        exitCode: null,
        message: `its executor could not be started: ${errorMessage(e)}`,
        countsAsAttempt: true,
      } as const;
      this.executorEnded(ex, end, { neverRan: true });
    }
  }

  /** Sends an executor what its outbox holds, one message at a time; the first send launches it. */
  private send(ex: Executor): Promise<void> {
    if (ex.sending) return ex.sending;
    // Cleared in a `.finally` callback, which runs after the field is set even when there was nothing to send.
    const sending = this.writeOutbox(ex).finally(() => {
      if (ex.sending === sending) ex.sending = undefined;
    });
    ex.sending = sending;
    return sending;
  }

  /**
   * Writes the outbox as messages until it is empty. A write that fails is tried again a second
   * later with what was in it (nothing is lost); one refused because the message exists means
   * another leader writes to this executor, which is then given up as lost.
   */
  private async writeOutbox(ex: Executor): Promise<void> {
    while (!ex.ended && (ex.outbox.assign.length > 0 || ex.outbox.kill.length > 0 || ex.outbox.stop || ex.outbox.beat)) {
      const out = ex.outbox;
      ex.outbox = emptyOutbox();
      const first = ex.lastSent === 0;
      try {
        await ex.down.write({ assign: out.assign, kill: out.kill, stop: out.stop, slots: ex.shape.slots, silenceMs: this.opts.silenceMs });
      } catch (e) {
        if (e instanceof ConflictError) {
          this.opts.logger.warning(`cannot write to executor ${ex.name}: ${errorMessage(e)}`);
          return this.executorEnded(
            ex,
            { outcome: 'failed', exitCode: null, message: errorMessage(e), countsAsAttempt: true },
            { neverRan: first },
          );
        }
        this.opts.logger.debug(`cannot write to executor ${ex.name} (trying again in a second): ${errorMessage(e)}`);
        ex.outbox = mergeOutbox(out, ex.outbox);
        await sleep(1000);
        continue;
      }
      ex.lastSent = Date.now();
      if (first) await this.launch(ex);
    }
  }

  /** One round: reads the ends of executors with jobs, sends heartbeats, stops the idle. */
  private async poll(): Promise<void> {
    if (this.polling || this.stopping.signal.aborted) return;
    this.polling = true;
    try {
      const now = Date.now();
      // Growth also waits on time (a job's pace learnt, a growth judged): look again now and then.
      if (this.queue.length > 0 && now - this.pumpedAt >= REPUMP_MS) this.pump();
      let waitingShapes: Set<string> | undefined; // made only when an executor has no jobs
      const waits = (shape: Shape) => (waitingShapes ??= new Set(this.queue.map((h) => h.shape.key))).has(shape.key);
      await Promise.all(
        [...this.executors.values()].map(async (ex) => {
          if (ex.ended) return;
          const due = (ex.jobs.size > 0 || !ex.started) && now - ex.lastRead >= ex.readEvery;
          if (due && ex.innerId !== undefined) await this.readEnds(ex);
          // Idle: no jobs, and none of its shape waiting (one still starting is waited for).
          const idle = ex.jobs.size === 0 && !waits(ex.shape);
          if (ex.jobs.size === 0 && !idle) ex.idleSince = now;
          if (idle && !ex.stopping && now - ex.idleSince >= (this.opts.idleMs ?? 60_000)) this.retire(ex);
          else if (ex.lastSent > 0 && now - ex.lastSent >= HEARTBEAT_MS) {
            ex.outbox.beat = true;
            void this.send(ex);
          }
        }),
      );
    } finally {
      this.polling = false;
    }
  }

  /**
   * Stops an executor (idle, or let go): a started one is told to (it finishes the jobs it holds
   * and exits 0), one not started yet is killed. It is given no more jobs.
   */
  private retire(ex: Executor, why = 'idle'): void {
    ex.stopping = true;
    this.opts.logger.debug(
      `executor ${ex.name}: ${why}, ${ex.started ? `told to stop (${ex.jobs.size} job(s) to finish)` : 'never started; killed'}`,
    );
    if (!ex.started && ex.innerId !== undefined) {
      void this.inner.kill([ex.innerId]).catch(() => undefined);
      return;
    }
    ex.outbox.stop = true;
    void this.send(ex);
  }

  private async readEnds(ex: Executor): Promise<void> {
    ex.lastRead = Date.now();
    let messages: UpMessage[];
    try {
      messages = await ex.up.readAll();
    } catch (e) {
      this.opts.logger.debug(`cannot read the ends from executor ${ex.name}: ${errorMessage(e)}`);
      return;
    }
    for (const m of messages) {
      if (m.started && !ex.started) {
        ex.started = true;
        ex.idleSince = Date.now();
        this.verdicts.started(ex.shape.key);
        this.opts.logger.debug(`executor ${ex.name} started on ${m.started.host}`);
      }
      for (const { key, end } of m.ends) {
        const held = ex.jobs.get(key);
        if (!held) continue;
        ex.jobs.delete(key);
        if (ex.jobs.size === 0) ex.idleSince = Date.now();
        this.notePace(held, end);
        this.ends.push({ ...end, batchJobId: held.id, jobId: held.req.jobId });
      }
    }
    ex.readEvery = messages.length > 0 ? ENDS_POLL_MS : Math.min(2 * ex.readEvery, ex.started ? QUIET_POLL_MS : POLL_MS);
    if (messages.length > 0) this.pump();
  }

  /** A job's end, for the pool's growth: its run time as its executor measured it. */
  private notePace(held: Held, end: UpMessage['ends'][number]['end']): void {
    const phases = end.place?.phases;
    const ran = phases?.started !== undefined && phases.finished !== undefined ? phases.finished - phases.started : undefined;
    this.growth.ended(held.shape.key, held, ran);
  }

  /** Takes the inner batch system's ends: a job of its own, or an executor. */
  private async readInnerEnds(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      const end = await this.inner.nextEnd(1000, signal);
      if (!end) continue;
      const ex = this.byInnerId.get(end.batchJobId);
      if (ex) {
        await this.readEnds(ex);
        this.executorEnded(ex, end);
        continue;
      }
      const held = this.own.get(end.batchJobId);
      if (!held) continue;
      this.own.delete(end.batchJobId);
      this.ownInnerId.delete(held.id);
      this.ends.push({ ...end, batchJobId: held.id, jobId: held.req.jobId });
    }
  }

  /** An executor ended: each job it still had ends with its reason (see the rules at the top). */
  private executorEnded(ex: Executor, end: InnerEnd, how: { neverRan?: boolean } = {}): void {
    ex.ended = true;
    this.executors.delete(ex.name);
    if (ex.innerId !== undefined) this.byInnerId.delete(ex.innerId);
    this.opts.logger.debug(`executor ${ex.name} ended (${said(end)})`);
    const neverRan = how.neverRan === true;
    for (const held of ex.jobs.values()) {
      const jobEnd = this.verdicts.forHeldJob(held.req.jobId, end, { executor: ex.name, neverRan });
      this.ends.push({ batchJobId: held.id, jobId: held.req.jobId, ...jobEnd });
    }
    if (ex.jobs.size > 0) this.opts.logger.info(`its executor ${ex.name} ended (${said(end)}) with ${ex.jobs.size} job(s) on it`);
    ex.jobs.clear();
    if (!ex.started && !ex.stopping && !this.poolOf(ex.shape).some((other) => other.started)) this.endedUnstarted(ex, end);
    this.pump();
  }

  /** An executor of a shape none of whose executors has started ended before it started. */
  private endedUnstarted(ex: Executor, end: InnerEnd): void {
    const verdict = this.verdicts.forWaitingJobs(ex.shape.key, end, ex.name);
    if (!verdict) {
      const lost = this.verdicts.startLossesOf(ex.shape.key);
      if (end.outcome === 'preempted')
        this.opts.logger.info(
          `executor ${ex.name} was taken away before it started (${lost} in a row; --kubernetesMaxDisruptions allows ${this.verdicts.maxDisruptions})`,
        );
      return;
    }
    const waiting: Held[] = [];
    const others: Held[] = [];
    for (const h of this.queue) (h.shape.key === ex.shape.key ? waiting : others).push(h);
    if (waiting.length === 0) return;
    this.queue = others;
    this.opts.logger.info(`executor ${ex.name} ended before it started; the ${waiting.length} job(s) waiting for it end with its reason`);
    for (const held of waiting) this.ends.push({ batchJobId: held.id, jobId: held.req.jobId, ...verdict });
  }

  async kill(batchJobIds: number[]): Promise<void> {
    const ids = new Set(batchJobIds);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const held = this.queue[i]!;
      if (!ids.has(held.id)) continue;
      this.queue.splice(i, 1);
      this.ends.push({
        batchJobId: held.id,
        jobId: held.req.jobId,
        outcome: 'killed',
        exitCode: null,
        message: 'killed before it started',
        countsAsAttempt: false,
      });
    }
    const innerIds = batchJobIds.map((id) => this.ownInnerId.get(id)).filter((x): x is number => x !== undefined);
    if (innerIds.length > 0) await this.inner.kill(innerIds);
    // A job on an executor ends at once (its slot is the leader's to give again); the executor
    // kills its process when the message reaches it, and its own report of the end is ignored.
    for (const ex of this.executors.values()) {
      const mine = [...ex.jobs.values()].filter((h) => ids.has(h.id));
      if (mine.length === 0) continue;
      for (const held of mine) {
        ex.jobs.delete(held.id);
        this.ends.push({
          batchJobId: held.id,
          jobId: held.req.jobId,
          outcome: 'killed',
          exitCode: null,
          message: 'killed by the leader',
          countsAsAttempt: false,
        });
      }
      if (ex.jobs.size === 0) ex.idleSince = Date.now();
      ex.outbox.kill.push(...mine.map((h) => h.id));
      void this.send(ex);
    }
    this.pump();
  }

  nextEnd(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined> {
    return this.ends.next(timeoutMs, signal);
  }

  private onExecutors(): number {
    let n = 0;
    for (const ex of this.executors.values()) n += ex.jobs.size;
    return n;
  }

  issuedCount(): number {
    return this.queue.length + this.own.size + this.onExecutors();
  }

  runningCount(): number {
    return this.onExecutors() + Math.min(this.own.size, this.inner.runningCount());
  }

  knows(batchJobId: number): boolean {
    if (this.ends.has(batchJobId) || this.ownInnerId.has(batchJobId) || this.queue.some((h) => h.id === batchJobId)) return true;
    for (const ex of this.executors.values()) if (ex.jobs.has(batchJobId)) return true;
    return false;
  }

  resync(): Promise<void> {
    return this.inner.resync();
  }

  waitingFor(): string | undefined {
    const words: string[] = [];
    if (this.queue.length > 0) {
      words.push(
        `${this.queue.length} waiting for an executor slot (${this.executors.size} executor(s) of at most ${this.opts.maxExecutors ?? 32})`,
      );
    }
    const inner = this.inner.waitingFor();
    if (inner) words.push(inner);
    return words.length > 0 ? words.join('; ') : undefined;
  }

  async shutdown(opts?: ShutdownOptions): Promise<void> {
    this.stopping.abort();
    clearInterval(this.timer);
    await this.inner.shutdown(opts);
    await this.reading.catch(() => undefined);
    await Promise.all([...this.executors.values()].map((ex) => ex.up.settle()));
  }
}
