/**
 * Turning job objects into job records: every new job reachable from the given roots gets an
 * id, its payload is encoded (promises become references), and the graph is checked before
 * anything is saved: a job that would wait on itself (directly, through a cycle of promises, or
 * as a follow-on placed under its own predecessor's children) is refused with the jobs named.
 */
import { randomBytes } from 'node:crypto';
import { GraphError } from '../errors.js';
import { classJobFields, jobInternals, type Job } from './job.js';
import { encodeValue } from './json.js';
import type { JobRecord } from './types.js';

/** A fresh job id: the definition name (shortened, made safe) and 10 random characters. */
export function newJobId(name: string): string {
  const stem =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 24) || 'job';
  const rand = randomBytes(8)
    .toString('base64url')
    .replace(/[^A-Za-z0-9]/g, '')
    .toLowerCase()
    .slice(0, 10)
    .padEnd(10, '0');
  return `${stem}-${rand}`;
}

export interface SavePlan {
  /** Records of the new jobs, in breadth-first order from the roots. */
  records: JobRecord[];
  /** When saving for a running job: ids of its new children and follow-ons. */
  newChildren: string[];
  newFollowOns: string[];
}

function label(job: Job<unknown>): string {
  const st = jobInternals(job);
  return st.id ? `'${st.name}' (${st.id})` : `'${st.name}'`;
}

/**
 * Plans saving the new jobs reachable from `roots` (for the workflow's start) or from the
 * running job's new successors (for a job's commit). Assigns ids to the new jobs.
 */
export function planSave(opts: { roots?: Job<unknown>[]; running?: Job<unknown>; createdBy?: string }): SavePlan {
  const running = opts.running;
  const runningId = running ? jobInternals(running).id : undefined;
  const start: Job<unknown>[] = [...(opts.roots ?? [])];
  const runningSt = running ? jobInternals(running) : undefined;
  if (runningSt) start.push(...runningSt.children, ...runningSt.followOns);

  // 1. Collect the new jobs.
  const order: Job<unknown>[] = [];
  const seen = new Set<Job<unknown>>();
  const queue = [...start];
  while (queue.length > 0) {
    const job = queue.shift()!;
    if (seen.has(job)) continue;
    const st = jobInternals(job);
    if (job === running) throw new GraphError(`job ${label(job)} cannot be a successor of itself`);
    if (st.id !== undefined) throw new GraphError(`job ${label(job)} is already part of the workflow; attach only new jobs`);
    seen.add(job);
    order.push(job);
    queue.push(...st.children, ...st.followOns);
  }

  // 2. Ids, so that promises between new jobs can be encoded.
  const assigned = new Map<Job<unknown>, string>();
  for (const job of order) assigned.set(job, newJobId(jobInternals(job).name));
  const idOf = (job: Job<unknown>) => assigned.get(job) ?? jobInternals(job).id;

  const preds = new Map<string, string[]>();
  const addPred = (child: string, pred: string) => {
    const list = preds.get(child);
    if (list) {
      if (!list.includes(pred)) list.push(pred);
    } else preds.set(child, [pred]);
  };
  for (const job of order) {
    const st = jobInternals(job);
    for (const c of [...st.children, ...st.followOns]) addPred(idOf(c)!, assigned.get(job)!);
  }
  if (runningSt && runningId) {
    for (const c of [...runningSt.children, ...runningSt.followOns]) addPred(idOf(c)!, runningId);
  }

  // 3. Records.
  const records: JobRecord[] = order.map((job) => {
    const st = jobInternals(job);
    const id = assigned.get(job)!;
    const deps = new Set<string>();
    const payload =
      st.kind === 'function'
        ? encodeValue(st.args ?? [], { what: `the arguments of job '${st.name}'`, idOf, deps })
        : encodeValue(classJobFields(job), { what: `the fields of job '${st.name}'`, idOf, deps });
    return {
      id,
      name: st.name,
      kind: st.kind,
      payload,
      requirements: st.requirements,
      checkpoint: st.checkpoint,
      children: st.children.map((c) => idOf(c)!),
      followOns: st.followOns.map((c) => idOf(c)!),
      staticChildren: st.children.length,
      staticFollowOns: st.followOns.length,
      predecessors: preds.get(id) ?? [],
      promiseDeps: [...deps],
      state: 'pending',
      remainingTries: null,
      attempts: 0,
      ...(opts.createdBy ? { createdBy: opts.createdBy } : {}),
    };
  });

  checkAcyclic(records, runningSt && runningId ? { id: runningId, children: runningSt.children.map((c) => idOf(c)!) } : undefined, (id) => {
    const job = order.find((j) => assigned.get(j) === id);
    return job ? `'${jobInternals(job).name}' (${id})` : `(${id})`;
  });

  for (const job of order) jobInternals(job).id = assigned.get(job)!;
  return {
    records,
    newChildren: runningSt ? runningSt.children.map((c) => idOf(c)!) : [],
    newFollowOns: runningSt ? runningSt.followOns.map((c) => idOf(c)!) : [],
  };
}

/**
 * Checks that the "must finish before" relation over the new jobs has no cycle. Nodes are jobs
 * and, for each job X, END(X) = "X and everything after it has finished". Edges: X → END(X);
 * END(s) → END(X) for each successor s of X; P → C for a child C; END(c) → F for each child c
 * of P and follow-on F of P; P → F; producer → consumer for a promise.
 */
export function checkAcyclic(
  records: JobRecord[],
  running: { id: string; children: string[] } | undefined,
  name: (id: string) => string,
): void {
  const byId = new Map(records.map((r) => [r.id, r]));
  const edges = new Map<string, string[]>();
  const add = (a: string, b: string) => {
    const l = edges.get(a);
    if (l) l.push(b);
    else edges.set(a, [b]);
  };
  const end = (id: string) => `END:${id}`;
  const parents: Array<{ id: string; children: string[]; followOns: string[] }> = [...records];
  if (running) parents.push({ id: running.id, children: running.children, followOns: [] });
  for (const r of records) {
    add(r.id, end(r.id));
    for (const dep of r.promiseDeps) if (byId.has(dep)) add(dep, r.id);
  }
  for (const p of parents) {
    const known = byId.has(p.id);
    for (const c of p.children) {
      add(p.id, c);
      if (known) add(end(c), end(p.id));
    }
    for (const f of p.followOns) {
      add(p.id, f);
      if (known) add(end(f), end(p.id));
      for (const c of p.children) add(end(c), f);
    }
  }
  // Iterative DFS with colours.
  const colour = new Map<string, 1 | 2>();
  for (const startNode of edges.keys()) {
    if (colour.has(startNode)) continue;
    const stack: Array<{ node: string; i: number }> = [{ node: startNode, i: 0 }];
    const path: string[] = [startNode];
    colour.set(startNode, 1);
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const next = edges.get(top.node)?.[top.i++];
      if (next === undefined) {
        colour.set(top.node, 2);
        stack.pop();
        path.pop();
        continue;
      }
      const c = colour.get(next);
      if (c === 1) {
        const jobs = cycleJobs(path.slice(path.indexOf(next)).concat(next));
        const unique = [...new Set(jobs)];
        const self = unique.length === 1;
        throw new GraphError(
          self
            ? `job ${name(unique[0]!)} would wait for itself: it is a follow-on placed below one of its predecessor's children, or it uses its own promise`
            : `the job graph has a cycle: ${jobs.map(name).join(' → ')}; each would wait for the next`,
          { jobs: unique.join(',') },
        );
      }
      if (c === undefined) {
        colour.set(next, 1);
        stack.push({ node: next, i: 0 });
        path.push(next);
      }
    }
  }
}

/**
 * The jobs of a cycle found in the "must finish before" relation, in order. End-of-job nodes
 * are left out, unless the cycle runs through them only (children of each other): then END(X)
 * stands for X.
 */
function cycleJobs(cycle: string[]): string[] {
  const jobs = cycle.filter((n) => !n.startsWith('END:'));
  return jobs.length > 0 ? jobs : cycle.map((n) => n.slice('END:'.length));
}
