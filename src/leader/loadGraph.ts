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
 * - Nothing is held per record beyond the graph's compact table (graphState.ts): the listing is
 *   streamed into the graph record by record, and at a restart an unfinished record is read
 *   again for its version when it is written.
 */
import { mapLimit } from '../concurrency.js';
import { ConflictError, JobStoreError, NotFoundError } from '../errors.js';
import type { JobRecord } from '../job/types.js';
import type { JobStore, Versioned } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import type { GraphState } from './graphState.js';

const PARALLEL = 16;

interface LoadOptions {
  rootJobId: string;
  restart: boolean;
  log: Logger;
}

/** Fills `graph` with the records of the workflow, ready to run; at a restart, each unfinished one claimed. */
export async function loadJobGraph(store: JobStore, graph: GraphState, o: LoadOptions): Promise<void> {
  for await (const v of store.listJobs()) graph.add(v.value);
  if (!graph.has(o.rootJobId)) throw new NotFoundError(`the root job ${o.rootJobId} is missing from ${store.locator}`);
  const reached = await reach(store, graph, o);
  const orphans = [...graph.presentIds()].filter((id) => !reached.has(id));
  if (orphans.length > 0) {
    o.log.debug(`removing ${orphans.length} job record(s) left by attempts that did not finish`);
    await mapLimit(orphans, PARALLEL, (id) => store.deleteJob(id));
    for (const id of orphans) graph.remove(id);
  }
}

/** Everything reachable from the root, level by level, each record settled (see {@link settle}). */
async function reach(store: JobStore, graph: GraphState, o: LoadOptions): Promise<{ has(id: string): boolean }> {
  const reached = graph.newJobSet();
  const missing: string[] = [];
  reached.add(o.rootJobId);
  let level = [o.rootJobId];
  while (level.length > 0) {
    const found = await mapLimit(level, PARALLEL, (id) => settle(store, graph, { id, ...o }));
    const next: string[] = [];
    level.forEach((id, i) => {
      if (!found[i]) return void missing.push(id);
      for (const s of graph.successorsOf(id)) if (reached.add(s)) next.push(s);
    });
    level = next;
  }
  if (missing.length > 0) throw unfinishable(store, graph, missing);
  return reached;
}

/**
 * A reachable record as the run starts with it, in the graph: loaded if it was not listed (made
 * since), and at a restart, unless done, written again with fresh tries. False if there is none.
 */
async function settle(store: JobStore, graph: GraphState, o: LoadOptions & { id: string }): Promise<boolean> {
  const listed = graph.node(o.id);
  if (listed && (!o.restart || listed.status === 'done')) return true;
  let cur = await loadIfAny(store, o.id);
  for (let attempt = 1; cur && o.restart && cur.value.state !== 'done'; attempt++) {
    const fresh = restarted(cur.value);
    try {
      await store.updateJob(fresh, cur.version);
      graph.add(fresh);
      return true;
    } catch (e) {
      if (!(e instanceof ConflictError) || attempt >= 5) throw e;
    }
    cur = await loadIfAny(store, o.id);
    if (cur?.value.state === 'done')
      o.log.info(`job '${cur.value.name}' (${o.id}) was committed by a worker of an earlier leader meanwhile: its result is kept`);
  }
  if (cur) graph.add(cur.value);
  return cur !== undefined;
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

function unfinishable(store: JobStore, graph: GraphState, missing: string[]): JobStoreError {
  const byParent = new Map<string, string[]>();
  for (const id of missing) {
    const parent = graph.predecessorsOf(id)[0];
    if (parent !== undefined) byParent.set(parent, [...(byParent.get(parent) ?? []), id]);
  }
  const what = [...byParent].map(([p, ids]) => {
    const pn = graph.node(p);
    return `job '${pn?.name ?? '?'}' (${p})${pn?.status === 'done' ? ' is done and' : ''} names ${ids.join(', ')}, which do not exist`;
  });
  return new JobStoreError(
    'JOBSTORE',
    `the workflow in ${store.locator} can never finish: ${what.join('; ')}; ` +
      `their work is lost: remove the store ('toil clean ${store.locator}') and run the workflow again`,
  );
}
