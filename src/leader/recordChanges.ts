/**
 * The leader's changes to job records: a job as it was created (for jobs a worker made and
 * perhaps already ran by chaining), a job reset for a checkpoint's rerun, and the retried
 * read-modify-write that stores either.
 */
import { ConflictError } from '../errors.js';
import type { JobRecord } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';

/** The record without what its runs added: its static successors only, pending. */
function withoutRuns(r: JobRecord): JobRecord {
  const out: JobRecord = {
    ...r,
    state: 'pending',
    children: r.children.slice(0, r.staticChildren),
    followOns: r.followOns.slice(0, r.staticFollowOns),
  };
  delete out.forwards;
  delete out.result;
  return out;
}

/** A new job's record as it was created (its completion is processed when its turn comes). */
export function asCreated(r: JobRecord): JobRecord {
  return r.state === 'pending' ? r : withoutRuns(r);
}

/** A record reset to run again from the start, with `tries` left (null: as many as configured). */
export function asReset(r: JobRecord, tries: number | null): JobRecord {
  const out: JobRecord = { ...withoutRuns(r), remainingTries: tries };
  delete out.chainedInto;
  delete out.spawned;
  delete out.filesToDelete;
  delete out.failure;
  return out;
}

/** Read-modify-write of a record, retried on conflicts. Returns what was written. */
export async function updateRecord(store: JobStore, id: string, change: (r: JobRecord) => JobRecord): Promise<JobRecord> {
  for (let attempt = 0; ; attempt++) {
    const cur = await store.loadJob(id);
    const next = change(cur.value);
    try {
      await store.updateJob(next, cur.version);
      return next;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= 5) throw e;
    }
  }
}
