/**
 * What an executor's end means for jobs (executorBatch.ts): pure rules over the ends the inner
 * batch system gives, with the counts of disruptions they keep.
 *
 * - **Jobs an executor held.** An executor that never ran (its pod refused, its image not
 *   pulled, no node: `NEVER_RAN`) passes its verdict to them as it is. Otherwise they were lost
 *   with it — taken away, not failed — and end `preempted` (or the executor's own disruption
 *   outcome), not counted against their tries, up to `maxDisruptions` times per job; the next
 *   time the job fails for good, as a pod of its own taken away that often would.
 * - **An executor that ended before it started** held no jobs (jobs go only to started
 *   executors), but the jobs waiting for its shape were waiting for it. Unless an executor of
 *   the shape has started (the caller checks), they end with its verdict, as pods of their own
 *   would have: a pod refused, an image that cannot be pulled, a container not created within
 *   `--kubernetesPodTimeout`, no node, its process failing at start — as it is (a final verdict
 *   stays final). A pod taken away before it started counts against the shape, not the jobs:
 *   once more than `maxDisruptions` executors of a shape in a row were, with none of the shape
 *   started between, the waiting jobs fail for good. One killed (the leader retired it) or that
 *   exited 0 passes nothing on.
 */
import type { BatchJobEnd } from '../types.js';

/** An end as the inner batch system or an executor gives it, before it is a job's. */
export type InnerEnd = Omit<BatchJobEnd, 'batchJobId' | 'jobId'>;

const NEVER_RAN = new Set<BatchJobEnd['outcome']>(['refused', 'image', 'unschedulable']);

export class ExecutorEnds {
  /** Times each job (by job id) was lost with its executor. */
  private readonly lost = new Map<string, number>();
  /** Executors of a shape taken away before they started, in a row. */
  private readonly startLosses = new Map<string, number>();

  constructor(readonly maxDisruptions: number) {}

  /** An executor of the shape started: its shape's count of start losses begins again. */
  started(shapeKey: string): void {
    this.startLosses.delete(shapeKey);
  }

  /** The end of a job an executor held when it ended (`executor`: its name). */
  forHeldJob(jobId: string, end: InnerEnd, how: { executor: string; neverRan: boolean }): InnerEnd {
    if (how.neverRan || NEVER_RAN.has(end.outcome)) return { ...end, place: undefined };
    const what = `its executor ${how.executor} ended (${said(end)})`;
    const n = (this.lost.get(jobId) ?? 0) + 1;
    this.lost.set(jobId, n);
    if (n > this.maxDisruptions) return this.tooMany(`it lost its executor ${n} times`, what);
    return {
      outcome: end.outcome === 'succeeded' || end.outcome === 'failed' ? 'preempted' : end.outcome,
      exitCode: null,
      message: what,
      countsAsAttempt: false,
      ...(end.place ? { place: end.place } : {}),
    };
  }

  /**
   * The end of the jobs waiting for the shape of an executor that ended before it started, or
   * undefined when they go on waiting (see the rules at the top).
   */
  forWaitingJobs(shapeKey: string, end: InnerEnd, executor: string): InnerEnd | undefined {
    if (end.outcome === 'killed' || end.outcome === 'succeeded') return undefined;
    if (end.outcome === 'preempted' && !end.countsAsAttempt) {
      const n = (this.startLosses.get(shapeKey) ?? 0) + 1;
      this.startLosses.set(shapeKey, n);
      if (n <= this.maxDisruptions) return undefined;
      return this.tooMany(`its executor pods were taken away ${n} times in a row before one started`, said(end));
    }
    return { ...end, place: undefined, message: `${end.message ?? end.outcome}; its executor ${executor} never started` };
  }

  /** How many executors of a shape were taken away before they started, in a row. */
  startLossesOf(shapeKey: string): number {
    return this.startLosses.get(shapeKey) ?? 0;
  }

  private tooMany(what: string, last: string): InnerEnd {
    return {
      outcome: 'preempted',
      exitCode: null,
      message: `${what}, more than the ${this.maxDisruptions} that --kubernetesMaxDisruptions allows (the last time: ${last}); the job is not run again`,
      countsAsAttempt: true,
      final: true,
    };
  }
}

/** An end in words: its outcome and message. */
export function said(end: InnerEnd): string {
  return `${end.outcome}${end.message ? `: ${end.message}` : ''}`;
}
