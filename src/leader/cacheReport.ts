/**
 * The workflow's node cache totals (hits, downloads, bytes not downloaded), summed by the
 * leader from its workers' stats messages and kept in a shared file of the job store, so that
 * `toil status` shows them during and after the run and a restart goes on counting.
 */
import { addStats, emptyStats, type CacheStats } from '../filestore/cacheRules.js';
import { CacheStatsSchema, parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';

export const CACHE_REPORT_FILE = 'cache-stats.json';

/** Sums the totals and writes them when they changed. */
export class CacheReport {
  private totals: CacheStats = emptyStats();
  private changed = false;

  constructor(private readonly store: JobStore) {}

  /** Starts from what the store holds (a restart goes on counting). */
  async load(): Promise<void> {
    this.totals = (await readCacheReport(this.store)) ?? emptyStats();
  }

  add(stats: CacheStats): void {
    this.totals = addStats(this.totals, stats);
    this.changed = true;
  }

  get current(): CacheStats {
    return { ...this.totals };
  }

  async save(): Promise<void> {
    if (!this.changed) return;
    this.changed = false;
    await this.store.writeShared(CACHE_REPORT_FILE, JSON.stringify(this.totals));
  }
}

/** The totals a leader saved, if any (advisory: an unreadable file is as good as none). */
export async function readCacheReport(store: JobStore): Promise<CacheStats | undefined> {
  const got = await store.readShared(CACHE_REPORT_FILE);
  if (!got) return undefined;
  try {
    return parseStored(CacheStatsSchema, got.value, CACHE_REPORT_FILE);
  } catch {
    return undefined;
  }
}
