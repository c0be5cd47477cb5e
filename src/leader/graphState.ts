/**
 * The leader's picture of the workflow: which jobs are done, which are ready to run, and which
 * wait. Pure logic, no I/O.
 *
 * A job X is ready when it is pending and:
 * - every job that has X as a child is done;
 * - every job P that has X as a follow-on is done and all of P's children have finished their
 *   subtrees (P's children, and everything after them);
 * - every job whose promise X uses has a value: it is done, and so is every job its value
 *   forwards to (a job that returned another job's promise).
 * A job's subtree is finished when it is done and all its successors' subtrees are finished.
 * The workflow succeeded when the root's subtree is finished.
 */
import type { JobRecord, StoredRequirements } from '../job/types.js';

export type NodeStatus = 'pending' | 'issued' | 'done' | 'failed';

export interface JobNode {
  id: string;
  name: string;
  children: string[];
  followOns: string[];
  staticChildren: number;
  staticFollowOns: number;
  promiseDeps: string[];
  requirements: StoredRequirements;
  checkpoint: boolean;
  status: NodeStatus;
  remainingTries: number;
  /** Waiting for a retry's backoff to pass. */
  waiting: boolean;
  forwards: string[];
  subtreeDone: boolean;
  /** Successors whose subtrees are not finished yet. */
  openChildren: number;
  openFollowOns: number;
}

interface Edges {
  asChildOf: string[];
  asFollowOnOf: string[];
}

export class GraphState {
  readonly nodes = new Map<string, JobNode>();
  readonly ready = new Set<string>();
  private readonly edges = new Map<string, Edges>();
  /** producer → jobs using its promise */
  private readonly consumers = new Map<string, Set<string>>();
  /** job → jobs whose value forwards to it */
  private readonly forwardedBy = new Map<string, Set<string>>();

  constructor(private readonly freshTries: number) {}

  private edgesOf(id: string): Edges {
    let e = this.edges.get(id);
    if (!e) {
      e = { asChildOf: [], asFollowOnOf: [] };
      this.edges.set(id, e);
    }
    return e;
  }

  private link(map: Map<string, Set<string>>, key: string, value: string): void {
    let s = map.get(key);
    if (!s) map.set(key, (s = new Set()));
    s.add(value);
  }

  /** Adds a job from its record. Call {@link recompute} after adding a batch at start-up. */
  add(rec: JobRecord): JobNode {
    const node: JobNode = {
      id: rec.id,
      name: rec.name,
      children: [...rec.children],
      followOns: [...rec.followOns],
      staticChildren: rec.staticChildren,
      staticFollowOns: rec.staticFollowOns,
      promiseDeps: rec.promiseDeps,
      requirements: rec.requirements,
      checkpoint: rec.checkpoint,
      status: rec.state === 'done' ? 'done' : rec.state === 'failed' ? 'failed' : 'pending',
      remainingTries: rec.remainingTries ?? this.freshTries,
      waiting: false,
      forwards: rec.forwards ?? [],
      subtreeDone: false,
      openChildren: rec.children.length,
      openFollowOns: rec.followOns.length,
    };
    this.nodes.set(rec.id, node);
    for (const c of node.children) this.edgesOf(c).asChildOf.push(rec.id);
    for (const f of node.followOns) this.edgesOf(f).asFollowOnOf.push(rec.id);
    for (const d of node.promiseDeps) this.link(this.consumers, d, rec.id);
    for (const f of node.forwards) this.link(this.forwardedBy, f, rec.id);
    return node;
  }

  /** Forgets a job (its edges from parents are kept: parents are reset separately). */
  remove(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    this.nodes.delete(id);
    this.ready.delete(id);
    for (const c of node.children) this.dropEdge(c, id, 'asChildOf');
    for (const f of node.followOns) this.dropEdge(f, id, 'asFollowOnOf');
    for (const d of node.promiseDeps) this.consumers.get(d)?.delete(id);
    for (const f of node.forwards) this.forwardedBy.get(f)?.delete(id);
  }

  private dropEdge(target: string, from: string, kind: keyof Edges): void {
    const e = this.edges.get(target);
    if (!e) return;
    e[kind] = e[kind].filter((x) => x !== from);
  }

  /** Recomputes finished subtrees, counters and the ready set from scratch. O(jobs + edges). */
  recompute(): void {
    const done = new Map<string, boolean>();
    // Iterative post-order over successors.
    for (const rootId of this.nodes.keys()) {
      if (done.has(rootId)) continue;
      const stack: Array<{ id: string; i: number }> = [{ id: rootId, i: 0 }];
      const onStack = new Set<string>([rootId]);
      while (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        const node = this.nodes.get(top.id);
        const succ = node ? [...node.children, ...node.followOns] : [];
        if (top.i < succ.length) {
          const next = succ[top.i++]!;
          if (!done.has(next) && !onStack.has(next)) {
            stack.push({ id: next, i: 0 });
            onStack.add(next);
          }
          continue;
        }
        stack.pop();
        onStack.delete(top.id);
        const finished = !!node && node.status === 'done' && succ.every((s) => done.get(s) === true);
        done.set(top.id, finished);
      }
    }
    this.ready.clear();
    for (const node of this.nodes.values()) {
      node.subtreeDone = done.get(node.id) === true;
      node.openChildren = node.children.filter((c) => done.get(c) !== true).length;
      node.openFollowOns = node.followOns.filter((c) => done.get(c) !== true).length;
    }
    for (const node of this.nodes.values()) this.refresh(node.id);
  }

  /** Whether a job's value (following forwards) is available. */
  valueReady(id: string, depth = 0): boolean {
    const n = this.nodes.get(id);
    if (!n || n.status !== 'done') return false;
    if (depth > 100) return false;
    return n.forwards.every((f) => this.valueReady(f, depth + 1));
  }

  isReady(id: string): boolean {
    const n = this.nodes.get(id);
    if (!n || n.status !== 'pending' || n.waiting) return false;
    const e = this.edges.get(id);
    if (e) {
      for (const p of e.asChildOf) if (this.nodes.get(p)?.status !== 'done') return false;
      for (const p of e.asFollowOnOf) {
        const pn = this.nodes.get(p);
        if (pn?.status !== 'done' || pn.openChildren > 0) return false;
      }
    }
    return n.promiseDeps.every((d) => this.valueReady(d));
  }

  /** Puts a job in the ready set if it is ready. */
  refresh(id: string): void {
    if (this.isReady(id)) this.ready.add(id);
    else this.ready.delete(id);
  }

  markIssued(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.status = 'issued';
    this.ready.delete(id);
  }

  /** An attempt failed and the job will be tried again after a wait. */
  markRetrying(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.status = 'pending';
    n.waiting = true;
    this.ready.delete(id);
  }

  /** The retry wait is over. */
  endWait(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.waiting = false;
    this.refresh(id);
  }

  /** The job failed for good: nothing after it will run. */
  markFailed(id: string): void {
    const n = this.nodes.get(id);
    if (!n) return;
    n.status = 'failed';
    n.waiting = false;
    this.ready.delete(id);
  }

  /**
   * The job is done. Its record lists its successors (including new ones, which must have been
   * added already) and the jobs its value forwards to.
   */
  markDone(rec: JobRecord): void {
    const n = this.nodes.get(rec.id);
    if (!n) return;
    const newChildren = rec.children.slice(n.children.length);
    const newFollowOns = rec.followOns.slice(n.followOns.length);
    for (const c of newChildren) {
      n.children.push(c);
      this.edgesOf(c).asChildOf.push(n.id);
      if (!this.nodes.get(c)?.subtreeDone) n.openChildren++;
    }
    for (const f of newFollowOns) {
      n.followOns.push(f);
      this.edgesOf(f).asFollowOnOf.push(n.id);
      if (!this.nodes.get(f)?.subtreeDone) n.openFollowOns++;
    }
    n.forwards = rec.forwards ?? [];
    for (const f of n.forwards) this.link(this.forwardedBy, f, n.id);
    n.status = 'done';
    n.waiting = false;
    this.ready.delete(n.id);
    for (const c of n.children) this.refresh(c);
    if (n.openChildren === 0) for (const f of n.followOns) this.refresh(f);
    this.valueBecameReady(n.id);
    this.maybeFinish(n.id);
  }

  /** Refreshes the consumers of a job's value, and of values forwarding to it. */
  private valueBecameReady(id: string): void {
    const seen = new Set<string>();
    const stack = [id];
    while (stack.length > 0) {
      const cur = stack.pop()!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      for (const c of this.consumers.get(cur) ?? []) this.refresh(c);
      for (const f of this.forwardedBy.get(cur) ?? []) stack.push(f);
    }
  }

  /** Marks finished subtrees upwards from `id`. */
  private maybeFinish(id: string): void {
    const stack = [id];
    while (stack.length > 0) {
      const cur = this.nodes.get(stack.pop()!);
      if (!cur || cur.subtreeDone || cur.status !== 'done' || cur.openChildren > 0 || cur.openFollowOns > 0) continue;
      cur.subtreeDone = true;
      const e = this.edges.get(cur.id);
      if (!e) continue;
      for (const p of e.asChildOf) {
        const pn = this.nodes.get(p);
        if (!pn) continue;
        pn.openChildren--;
        if (pn.openChildren === 0 && pn.status === 'done') for (const f of pn.followOns) this.refresh(f);
        stack.push(p);
      }
      for (const p of e.asFollowOnOf) {
        const pn = this.nodes.get(p);
        if (!pn) continue;
        pn.openFollowOns--;
        stack.push(p);
      }
    }
  }

  /** Jobs with an edge into `id`, nearest first. */
  predecessorsOf(id: string): string[] {
    const e = this.edges.get(id);
    return e ? [...e.asChildOf, ...e.asFollowOnOf] : [];
  }

  /** Everything below `id` (successors, transitively), not including `id`. */
  subtreeOf(id: string, staticOnly = false): Set<string> {
    const out = new Set<string>();
    const stack = [id];
    while (stack.length > 0) {
      const n = this.nodes.get(stack.pop()!);
      if (!n) continue;
      const succ = staticOnly
        ? [...n.children.slice(0, n.staticChildren), ...n.followOns.slice(0, n.staticFollowOns)]
        : [...n.children, ...n.followOns];
      for (const s of succ) {
        if (!out.has(s) && s !== id) {
          out.add(s);
          stack.push(s);
        }
      }
    }
    return out;
  }

  /** The nearest checkpoint above `id` that still has tries left. */
  checkpointAbove(id: string): string | undefined {
    const seen = new Set<string>([id]);
    let frontier = [id];
    while (frontier.length > 0) {
      const next: string[] = [];
      for (const cur of frontier) {
        for (const p of this.predecessorsOf(cur)) {
          if (seen.has(p)) continue;
          seen.add(p);
          const pn = this.nodes.get(p);
          if (pn?.checkpoint && pn.remainingTries > 1) return p;
          next.push(p);
        }
      }
      frontier = next;
    }
    return undefined;
  }

  counts(): { done: number; issued: number; pending: number; failed: number; total: number } {
    let done = 0;
    let issued = 0;
    let pending = 0;
    let failed = 0;
    for (const n of this.nodes.values()) {
      if (n.status === 'done') done++;
      else if (n.status === 'issued') issued++;
      else if (n.status === 'failed') failed++;
      else pending++;
    }
    return { done, issued, pending, failed, total: this.nodes.size };
  }
}
