/**
 * New jobs' records as the worker that created them wrote them, kept by the leader until each
 * job is first issued, so that a warm worker (single_machine, an executor) need not read the
 * record back: one job store request less per job.
 *
 * Rules:
 * - A record is kept only with the version it was written with, and only while pending.
 * - It is handed out once (`take`): a job issued again (a retry, a lost executor) is read from
 *   the job store, as is any job whose record the leader changes (`forget` before each change).
 * - A stale copy cannot do harm: the worker's commit is conditional on the version it was given.
 * - At most {@link MAX_BYTES} of records (by their JSON) are kept; the oldest go first, and
 *   what is not kept is read by its worker as before. A leader of a million jobs holds no more.
 */
import type { JobRecord } from '../job/types.js';

/** The records kept at most, in characters of JSON. */
export const MAX_BYTES = 16 * 1024 * 1024;

export interface FreshRecord {
  value: JobRecord;
  version: string;
}

export class FreshRecords {
  private readonly kept = new Map<string, FreshRecord & { bytes: number }>();
  private bytes = 0;

  constructor(private readonly maxBytes = MAX_BYTES) {}

  /** Keeps a record just created, with the version it was written with. */
  add(value: JobRecord, version: string): void {
    if (value.state !== 'pending' || version === '') return;
    const bytes = JSON.stringify(value).length;
    if (bytes > this.maxBytes) return;
    this.forget(value.id);
    this.kept.set(value.id, { value, version, bytes });
    this.bytes += bytes;
    for (const [id, r] of this.kept) {
      if (this.bytes <= this.maxBytes) break;
      this.kept.delete(id);
      this.bytes -= r.bytes;
    }
  }

  /** The record of a job about to be issued, once; undefined when not kept. */
  take(id: string): FreshRecord | undefined {
    const r = this.kept.get(id);
    if (!r) return undefined;
    this.forget(id);
    return { value: r.value, version: r.version };
  }

  /** Drops a record the leader is about to change, or one of a job that is gone. */
  forget(id: string): void {
    const r = this.kept.get(id);
    if (!r) return;
    this.kept.delete(id);
    this.bytes -= r.bytes;
  }

  /** How many records are kept, and their size (for tests). */
  get size(): { records: number; bytes: number } {
    return { records: this.kept.size, bytes: this.bytes };
  }
}
