import { UsageError } from '../errors.js';
import type { JobRecord } from '../job/types.js';
import { openJobStore } from '../jobstore/open.js';
import { readWorkflowInfo } from '../jobstore/workflowInfo.js';
import { readActivity } from '../leader/activity.js';
import { leaseSeemsLive, readLease } from '../leader/lease.js';
import { readCacheReport } from '../leader/cacheReport.js';
import { formatStats, type CacheStats } from '../filestore/cacheRules.js';

export interface StoreStatus {
  locator: string;
  workflowId: string | null;
  completed: boolean;
  leader: { host: string; pid: number; expiresAt: string } | null;
  /** `running`: jobs running now, as the live leader says (0 without one); `pending` are the others not yet done. */
  counts: { total: number; done: number; running: number; pending: number; failed: number };
  /** Jobs a live leader has handed to the batch system (running, or queued there). */
  issued: Array<{ id: string; name: string }>;
  /** The first {@link LISTED_MAX} failed jobs (`counts.failed` counts them all). */
  failed: Array<{ id: string; name: string; failure: string; logTail: string }>;
  /** The first {@link LISTED_MAX} jobs that failed and will be retried. */
  retrying: Array<{ id: string; name: string; failure: string; remainingTries: number | null }>;
  /** Node cache totals of the workflow's jobs, as the leader last saved them. */
  cache: CacheStats | null;
}

/** How many failed and retrying jobs are listed by name; the counts cover them all. */
export const LISTED_MAX = 100;

/**
 * Summarises a job store: the workflow, its leader, jobs by state and failures. The records are
 * read as a stream and only counted, so a store of a million jobs is summarised in little memory.
 */
export async function storeStatus(locator: string): Promise<StoreStatus> {
  const store = await openJobStore(locator);
  if (!(await store.exists())) throw new UsageError(`job store ${store.locator} does not exist`);
  const info = await readWorkflowInfo(store);
  const lease = await readLease(store);
  const tally = { total: 0, done: 0, pending: 0, failed: 0 };
  const failedRecs: JobRecord[] = [];
  const retrying: StoreStatus['retrying'] = [];
  for await (const { value: r } of store.listJobs()) {
    tally.total++;
    tally[r.state]++;
    if (r.state === 'failed' && failedRecs.length < LISTED_MAX) failedRecs.push(r);
    if (r.state === 'pending' && r.failure !== undefined && retrying.length < LISTED_MAX)
      retrying.push({ id: r.id, name: r.name, failure: r.failure, remainingTries: r.remainingTries });
  }
  const live = lease !== undefined && leaseSeemsLive(lease.body);
  const activity = live ? await readActivity(store) : undefined;
  const cache = (await readCacheReport(store)) ?? null;
  const running = activity?.running ?? 0;
  const failed = await Promise.all(
    failedRecs.map(async (r) => {
      const log = (await store.readJobLog(r.id)) ?? '';
      return { id: r.id, name: r.name, failure: r.failure ?? 'failed', logTail: log.trimEnd().split('\n').slice(-10).join('\n') };
    }),
  );
  return {
    locator: store.locator,
    workflowId: info?.info.workflowId ?? null,
    completed: info?.info.completed === true,
    leader: lease && live ? { host: lease.body.host, pid: lease.body.pid, expiresAt: new Date(lease.body.expiresAt).toISOString() } : null,
    counts: { ...tally, running, pending: tally.pending - running },
    issued: activity?.issued ?? [],
    failed,
    retrying,
    cache,
  };
}

export function formatStatus(s: StoreStatus): string {
  const out: string[] = [];
  out.push(`Job store ${s.locator}`);
  out.push(`  workflow: ${s.workflowId ?? '(none)'}${s.completed ? ' (completed)' : ''}`);
  out.push(`  leader:   ${s.leader ? `running (pid ${s.leader.pid} on ${s.leader.host})` : 'not running'}`);
  out.push(
    `  jobs:     ${s.counts.total} total, ${s.counts.done} done, ${s.counts.running} running, ${s.counts.pending} pending, ${s.counts.failed} failed`,
  );
  if (s.cache) out.push(`  cache:    ${formatStats(s.cache)}`);
  if (s.issued.length > 0) out.push(`  issued:   ${s.issued.map((j) => `'${j.name}' (${j.id})`).join(', ')}`);
  for (const r of s.retrying)
    out.push(`  retrying: '${r.name}' (${r.id}): ${r.failure}${r.remainingTries !== null ? ` (${r.remainingTries} tries left)` : ''}`);
  for (const f of s.failed) {
    out.push(`  failed:   '${f.name}' (${f.id}): ${f.failure}`);
    if (f.logTail) for (const l of f.logTail.split('\n')) out.push(`            | ${l}`);
  }
  if (s.counts.failed > s.failed.length) out.push(`  failed:   ${s.counts.failed - s.failed.length} more, not listed`);
  return out.join('\n');
}
