/**
 * What the pool's sizing rules (poolSizing.ts, pure) need remembered, per shape: the pace of each
 * job name, the times of recent ends, the growth being judged and a size the shape is held at.
 * executorBatch.ts asks it how many executors to make and how many jobs an executor may hold,
 * and tells it what was made and what ended.
 */
import type { Logger } from '../../log.js';
import {
  canJudge,
  executorsToAdd,
  executorsToAddByRate,
  HOLD_MS,
  jobsPerExecutor,
  judgeGrowth,
  Paces,
  rateOfEnds,
  trimToWindow,
  waitsToBeJudged,
  type Growth,
} from './poolSizing.js';

/** A job given to an executor, as the growth rules see it. */
export interface GivenJob {
  req: { jobName: string };
  /** When it was given to an executor. */
  assignedAt?: number;
}

/** An executor of the shape (started or starting, not told to stop), as the growth rules see it. */
export interface PoolMember {
  started: boolean;
  jobs: ReadonlyMap<number, GivenJob>;
}

/** How many executors to make now, and what a growth is then judged by. */
export interface GrowthPlan {
  add: number;
  /** Ends per second over the last window. */
  before: number;
  /** Started executors now. */
  had: number;
  /** The growth can be judged (ends come often enough). */
  judged: boolean;
  /** The newest executors of the shape to take no more jobs and stop once theirs are done (a growth undone). */
  undo: number;
}

export class PoolGrowth {
  private readonly paces = new Paces();
  private readonly endTimes = new Map<string, number[]>();
  private readonly growths = new Map<string, Growth>();
  private readonly holds = new Map<string, { executors: number; until: number }>();

  constructor(private readonly logger: Logger) {}

  /** Jobs an executor of `shapeKey` may hold, for a job of `name`. */
  capacity(shapeKey: string, slots: number, name: string): number {
    return jobsPerExecutor(slots, this.paces.get(`${shapeKey}|${name}`));
  }

  /** How many executors of a shape to make for the jobs waiting (by name) beside its pool. */
  plan(shape: { key: string; slots: number }, pool: PoolMember[], waiting: ReadonlyMap<string, number>): GrowthPlan {
    const now = Date.now();
    const load = {
      slots: shape.slots,
      executors: pool.length,
      waiting,
      held: heldByName(pool),
      pace: (name: string) => this.paces.get(`${shape.key}|${name}`),
      runningFor: (name: string) => runningFor(pool, name, now),
    };
    const times = this.endTimes.get(shape.key) ?? [];
    const before = rateOfEnds(times, now);
    const had = pool.filter((ex) => ex.started).length;
    const judged = had > 0 && canJudge(times, now);
    if (waitsToBeJudged(load, had, judged)) return { add: 0, before, had, judged, undo: 0 };
    const add = Math.max(executorsToAdd(load), judged ? executorsToAddByRate(load, had, before) : 0);
    return { ...this.mayPay(shape.key, pool, judged ? Math.min(add, had) : add, before), before, had, judged };
  }

  /** `added` executors were made as `plan` said: a growth that can be judged is, later. */
  made(shapeKey: string, plan: GrowthPlan, added: number): void {
    if (added > 0 && plan.judged) this.growths.set(shapeKey, { before: plan.before, had: plan.had, added, madeAt: Date.now() });
  }

  /** A job ended: its run time as its executor measured it (`ranMs`; else since it was given). */
  ended(shapeKey: string, job: GivenJob, ranMs: number | undefined): void {
    const now = Date.now();
    const times = this.endTimes.get(shapeKey) ?? [];
    times.push(now);
    trimToWindow(times, now);
    this.endTimes.set(shapeKey, times);
    const ms = ranMs ?? (job.assignedAt !== undefined ? now - job.assignedAt : undefined);
    if (ms !== undefined) this.paces.add(`${shapeKey}|${job.req.jobName}`, ms);
  }

  /**
   * How many of `add` new executors may be made (none while the last growth is being judged,
   * none past a size the shape is held at), and how many of the newest to let go (a growth
   * undone). `rate`: its ends per second now.
   */
  private mayPay(shapeKey: string, pool: PoolMember[], add: number, rate: number): { add: number; undo: number } {
    const now = Date.now();
    const hold = this.holds.get(shapeKey);
    if (hold && now < hold.until) return { add: Math.max(0, Math.min(add, hold.executors - pool.length)), undo: 0 };
    const growth = this.growths.get(shapeKey);
    if (!growth) return { add, undo: 0 };
    if (growth.allStartedAt === undefined && pool.every((ex) => ex.started)) growth.allStartedAt = now;
    const verdict = judgeGrowth(growth, rate, now);
    if (verdict === 'wait') return { add: 0, undo: 0 };
    this.growths.delete(shapeKey);
    if (verdict === 'paid' || verdict === 'unjudged') return { add, undo: 0 };
    const undo = verdict === 'undone' ? Math.min(growth.added, pool.length - 1) : 0;
    const size = pool.length - undo;
    this.holds.set(shapeKey, { executors: size, until: now + HOLD_MS });
    this.logger.debug(
      `executors of ${shapeKey}: the last ${growth.added} added ${undo > 0 ? `did not raise the rate of ends (${rate.toFixed(1)}/s, ${growth.before.toFixed(1)}/s before); letting ${undo} go` : 'did not raise the rate of ends by half of what they promised'}; holding at ${size} for ${HOLD_MS / 1000} s`,
    );
    return { add: 0, undo };
  }
}

/** The jobs given to executors (running or queued there), by name. */
function heldByName(pool: PoolMember[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const ex of pool) for (const job of ex.jobs.values()) out.set(job.req.jobName, (out.get(job.req.jobName) ?? 0) + 1);
  return out;
}

/** How long the longest-running job of a name in the pool has run (undefined: none). */
function runningFor(pool: PoolMember[], name: string, now: number): number | undefined {
  let first: number | undefined;
  for (const ex of pool) {
    for (const job of ex.jobs.values()) {
      if (job.req.jobName === name && job.assignedAt !== undefined) first = Math.min(first ?? Infinity, job.assignedAt);
    }
  }
  return first === undefined ? undefined : now - first;
}
