/**
 * Loading a workflow's job graph from the job store, when a run starts and when it restarts.
 *
 * Rules:
 * - The graph is what is reachable from the root through children and follow-ons. A record
 *   that is not was made by an attempt that never committed (a worker saves the jobs it
 *   created first and commits its own record after): it is deleted.
 * - At a restart a worker of an earlier leader may still be running (a pod on a partitioned
 *   node) and commit after the load. So, before anything is deleted, every reachable record
 *   that is not done is written again, with a fresh set of tries: its version changes, and the
 *   worker's commit, conditional on the version it read, is refused (it then discards its result
 *   and the jobs it created). A rewrite refused because such a worker committed first reads the
 *   record again: it is done now, and the jobs it created are reachable, loaded and kept. Only
 *   then are orphans deleted, and only among the records listed at the start: a job created
 *   since is never taken for one.
 * - A reachable record that does not exist (a done job naming a successor that was deleted)
 *   means the workflow can never finish from this store: the load fails, naming the jobs,
 *   rather than leaving the leader waiting for jobs that never run.
 */
import { mapLimit } from '../concurrency.js';
import { ConflictError, JobStoreError, NotFoundError } from '../errors.js';
import type { JobRecord } from '../job/types.js';
import type { JobStore, Versioned } from '../jobstore/types.js';
import type { Logger } from '../log.js';

const PARALLEL = 16;

interface Reached {
  id: string;
  /** The record naming it (none for the root). */
  parent: JobRecord | undefined;
}

/** The records of the graph, ready to run; at a restart, each unfinished one claimed. */
export async function loadJobGraph(store: JobStore, o: { rootJobId: string; restart: boolean; log: Logger }): Promise<JobRecord[]> {
  const listed = new Map<string, Versioned<JobRecord>>();
  for await (const v of store.listJobs()) listed.set(v.value.id, v);
  if (!listed.has(o.rootJobId)) throw new NotFoundError(`the root job ${o.rootJobId} is missing from ${store.locator}`);
  const reached = await reach(store, listed, o);
  const orphans = [...listed.keys()].filter((id) => !reached.has(id));
  if (orphans.length > 0) {
    o.log.debug(`removing ${orphans.length} job record(s) left by attempts that did not finish`);
    await mapLimit(orphans, PARALLEL, (id) => store.deleteJob(id));
  }
  return [...reached.values()];
}

/** Everything reachable from the root, level by level, each record settled (see {@link settle}). */
async function reach(
  store: JobStore,
  listed: Map<string, Versioned<JobRecord>>,
  o: { rootJobId: string; restart: boolean; log: Logger },
): Promise<Map<string, JobRecord>> {
  const reached = new Map<string, JobRecord>();
  const missing: Reached[] = [];
  const seen = new Set<string>([o.rootJobId]);
  let level: Reached[] = [{ id: o.rootJobId, parent: undefined }];
  while (level.length > 0) {
    const records = await mapLimit(level, PARALLEL, (r) => settle(store, listed.get(r.id), { id: r.id, ...o }));
    const next: Reached[] = [];
    records.forEach((rec, i) => {
      if (!rec) return void missing.push(level[i]!);
      reached.set(rec.id, rec);
      for (const s of [...rec.children, ...rec.followOns]) {
        if (seen.has(s)) continue;
        seen.add(s);
        next.push({ id: s, parent: rec });
      }
    });
    level = next;
  }
  if (missing.length > 0) throw unfinishable(store, missing);
  return reached;
}

/**
 * A reachable record as the run starts with it: loaded if it was not listed (made since), and
 * at a restart, unless done, written again with fresh tries; undefined if there is none.
 */
async function settle(
  store: JobStore,
  listed: Versioned<JobRecord> | undefined,
  o: { id: string; restart: boolean; log: Logger },
): Promise<JobRecord | undefined> {
  let cur = listed ?? (await loadIfAny(store, o.id));
  for (let attempt = 1; cur && o.restart && cur.value.state !== 'done'; attempt++) {
    const fresh = restarted(cur.value);
    try {
      await store.updateJob(fresh, cur.version);
      return fresh;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= 5) throw e;
    }
    cur = await loadIfAny(store, o.id);
    if (cur?.value.state === 'done')
      o.log.info(`job '${cur.value.name}' (${o.id}) was committed by a worker of an earlier leader meanwhile: its result is kept`);
  }
  return cur?.value;
}

/** A restart gives every unfinished job a fresh set of tries. */
function restarted(rec: JobRecord): JobRecord {
  const fresh: JobRecord = { ...rec, state: 'pending', remainingTries: null };
  delete fresh.failure;
  return fresh;
}

async function loadIfAny(store: JobStore, id: string): Promise<Versioned<JobRecord> | undefined> {
  try {
    return await store.loadJob(id);
  } catch (e) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}

function unfinishable(store: JobStore, missing: Reached[]): JobStoreError {
  const byParent = new Map<JobRecord, string[]>();
  for (const m of missing) if (m.parent) byParent.set(m.parent, [...(byParent.get(m.parent) ?? []), m.id]);
  const what = [...byParent].map(
    ([p, ids]) => `job '${p.name}' (${p.id})${p.state === 'done' ? ' is done and' : ''} names ${ids.join(', ')}, which do not exist`,
  );
  return new JobStoreError(
    'JOBSTORE',
    `the workflow in ${store.locator} can never finish: ${what.join('; ')}; ` +
      `their work is lost: remove the store ('toil clean ${store.locator}') and run the workflow again`,
  );
}
