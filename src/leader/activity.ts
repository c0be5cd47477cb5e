/**
 * What a running leader is doing, for `toil status`: the jobs it has handed to the batch
 * system and how many of them run. Job records say only pending/done/failed; this shared file,
 * rewritten by the leader when it changes and removed when it ends, says the rest.
 */
import { z } from 'zod';
import { parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';

export const ACTIVITY_FILE = 'leader-activity.json';

/** At most this many issued jobs are listed by name. */
const MAX_LISTED = 100;

const ActivitySchema = z.object({
  running: z.number(),
  issued: z.array(z.object({ id: z.string(), name: z.string() })),
  issuedCount: z.number(),
  at: z.number(),
});
export type LeaderActivity = z.infer<typeof ActivitySchema>;

/** Writes the leader's activity when it differs from what was last written. */
export class ActivityWriter {
  private last = '';

  constructor(private readonly store: JobStore) {}

  async write(running: number, issued: ReadonlyArray<{ id: string; name: string }>): Promise<void> {
    const body = { running, issued: issued.slice(0, MAX_LISTED), issuedCount: issued.length };
    const key = JSON.stringify(body);
    if (key === this.last) return;
    this.last = key;
    await this.store.writeShared(ACTIVITY_FILE, JSON.stringify({ ...body, at: Date.now() }));
  }

  async remove(): Promise<void> {
    await this.store.deleteShared(ACTIVITY_FILE);
  }
}

/** The activity of the store's leader, if it has written one (check that the leader is live). */
export async function readActivity(store: JobStore): Promise<LeaderActivity | undefined> {
  const got = await store.readShared(ACTIVITY_FILE);
  if (!got) return undefined;
  try {
    return parseStored(ActivitySchema, got.value, ACTIVITY_FILE);
  } catch {
    return undefined; // activity is advisory: a torn or old one is as good as none
  }
}
