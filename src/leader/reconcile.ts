/**
 * The safety net under every way a batch job's end can go missing (a lost event, a lagging
 * stream, a bug): every reconcile period the leader checks its issued batch jobs against the
 * truth, as a controller resyncs. The batch system first reads its own truth again (`resync`:
 * for Kubernetes one list, only when its watch is in doubt); then, for each batch job issued a
 * period ago or more, these rules (pure; `reconcileActions`):
 *
 * - **Lost**: the batch system no longer knows it (not running, not queued, no end waiting):
 *   its end was lost. Its job's outcome is read from the job store, as for any end: done is
 *   done; otherwise the attempt failed and runs again without using up a try. Said at warning
 *   level.
 * - **Done but silent**: the batch system still has it, and the job store says its job is done,
 *   and so is every job its worker chained into after it (`chainDone`) — at two reconciliations
 *   in a row, so that a worker that has just committed has a whole period to end on its own.
 *   It is taken as done, saying so, and the batch job is ended.
 * - Otherwise nothing; a done sighting not confirmed next time is forgotten.
 *
 * Cost, each period: the resync, and one job record read (two for a chain) per batch job running
 * longer than the period.
 */
import { errorMessage } from '../errors.js';
import type { JobRecord } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';

/** What the leader keeps of an issued batch job. */
export interface IssuedBatchJob {
  jobId: string;
  /** When it was issued (ms). */
  at: number;
  /** When a reconciliation first found its job done in the job store while the batch job had not ended. */
  doneSeenAt?: number;
}

export type ReconcileAction = { kind: 'lost' | 'takeAsDone'; batchJobId: number; job: IssuedBatchJob };

/** The batch jobs a reconciliation at `now` looks at: those issued a period ago or more. */
export function dueForReconcile(
  issued: ReadonlyMap<number, IssuedBatchJob>,
  now: number,
  periodMs: number,
): Array<[number, IssuedBatchJob]> {
  return [...issued.entries()].filter(([, v]) => now - v.at >= periodMs);
}

/**
 * The rules above, for the batch jobs `dueForReconcile` gave, with what the batch system knows
 * and what the job store says (`done`, read for those it knows). Notes a first done sighting on
 * the job itself.
 */
export function reconcileActions(
  due: ReadonlyArray<[number, IssuedBatchJob]>,
  o: { now: number; knows: (batchJobId: number) => boolean; done: readonly boolean[] },
): ReconcileAction[] {
  const out: ReconcileAction[] = [];
  for (const [k, [batchJobId, job]] of due.entries()) {
    if (!o.knows(batchJobId)) out.push({ kind: 'lost', batchJobId, job });
    else if (!o.done[k]) delete job.doneSeenAt;
    else if (job.doneSeenAt === undefined) job.doneSeenAt = o.now;
    else out.push({ kind: 'takeAsDone', batchJobId, job });
  }
  return out;
}

/** Whether a job, and every job its worker chained into after it, is done in the job store (false when it cannot be read). */
export async function chainDone(store: JobStore, jobId: string, debug: (m: string) => void): Promise<boolean> {
  try {
    for (let id: string | undefined = jobId; id !== undefined;) {
      const rec: JobRecord = (await store.loadJob(id)).value;
      if (rec.state !== 'done') return false;
      id = rec.chainedInto;
    }
    return true;
  } catch (e) {
    debug(`cannot read job ${jobId} to reconcile: ${errorMessage(e)}`);
    return false;
  }
}
