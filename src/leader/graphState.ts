/**
 * The leader's picture of the workflow: which jobs are done, which are ready to run, and which
 * wait. Pure logic, no I/O; what is kept per job, and how compactly, is jobTable.ts's.
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
import {
  ABSENT,
  CHECKPOINT,
  DONE,
  FAILED,
  Interned,
  ISSUED,
  JobTable,
  PENDING,
  SUBTREE_DONE,
  WAITING,
  type SlotLists,
} from './jobTable.js';

export type NodeStatus = 'pending' | 'issued' | 'done' | 'failed';

const STATUS_NAMES: Record<number, NodeStatus> = { [PENDING]: 'pending', [ISSUED]: 'issued', [DONE]: 'done', [FAILED]: 'failed' };

/** What the leader sees of one job (a snapshot: changes go through GraphState's methods). */
export interface JobView {
  id: string;
  name: string;
  status: NodeStatus;
  requirements: StoredRequirements;
  checkpoint: boolean;
  remainingTries: number;
  subtreeDone: boolean;
}

export class GraphState {
  /** Ids of the jobs ready to run, in the order they became ready. */
  readonly ready = new Set<string>();
  private readonly t = new JobTable();
  private readonly names = new Interned<string>((s) => s);
  private readonly reqs = new Interned<StoredRequirements>((r) => JSON.stringify(r));
  /** Jobs by status (index: the status code). */
  private readonly tally = [0, 0, 0, 0, 0];

  constructor(private readonly freshTries: number) {}

  private present(id: string): number | undefined {
    const s = this.t.find(id);
    return s !== undefined && this.t.status(s) !== ABSENT ? s : undefined;
  }

  private setStatus(s: number, status: number): void {
    this.tally[this.t.status(s)]!--;
    this.tally[status]!++;
    this.t.setStatus(s, status);
  }

  has(id: string): boolean {
    return this.present(id) !== undefined;
  }

  node(id: string): JobView | undefined {
    const s = this.present(id);
    if (s === undefined) return undefined;
    const t = this.t;
    return {
      id,
      name: this.names.values[t.name[s]!]!,
      status: STATUS_NAMES[t.status(s)]!,
      requirements: this.reqs.values[t.requirements[s]!]!,
      checkpoint: t.has(s, CHECKPOINT),
      remainingTries: t.tries[s]!,
      subtreeDone: t.has(s, SUBTREE_DONE),
    };
  }

  setRemainingTries(id: string, tries: number): void {
    const s = this.present(id);
    if (s !== undefined) this.t.tries[s] = tries;
  }

  /** Adds a job from its record (replacing it if present). Call {@link recompute} after adding a batch at start-up. */
  add(rec: JobRecord): void {
    if (this.has(rec.id)) this.remove(rec.id);
    const t = this.t;
    const s = t.slot(rec.id);
    const children = t.slots(rec.children);
    const followOns = t.slots(rec.followOns);
    const deps = t.slots(rec.promiseDeps);
    const forwards = t.slots(rec.forwards ?? []);
    const status = rec.state === 'done' ? DONE : rec.state === 'failed' ? FAILED : PENDING;
    t.state[s] = status | (rec.checkpoint ? CHECKPOINT : 0);
    this.tally[status]!++;
    t.name[s] = this.names.id(rec.name);
    t.requirements[s] = this.reqs.id(rec.requirements);
    t.tries[s] = rec.remainingTries ?? this.freshTries;
    t.staticChildren[s] = rec.staticChildren;
    t.staticFollowOns[s] = rec.staticFollowOns;
    t.openChildren[s] = children.length;
    t.openFollowOns[s] = followOns.length;
    t.children.set(s, children);
    t.followOns.set(s, followOns);
    t.promiseDeps.set(s, deps);
    t.forwards.set(s, forwards);
    for (const c of children) t.asChildOf.add(c, s);
    for (const f of followOns) t.asFollowOnOf.add(f, s);
    for (const d of deps) t.consumers.add(d, s);
    for (const f of forwards) t.forwardedBy.add(f, s);
  }

  /** Forgets a job (its edges from parents are kept: parents are reset separately). */
  remove(id: string): void {
    const s = this.present(id);
    if (s === undefined) return;
    const t = this.t;
    this.tally[t.status(s)]!--;
    t.state[s] = ABSENT;
    this.ready.delete(id);
    for (const c of t.children.get(s)) t.asChildOf.delete(c, s);
    for (const f of t.followOns.get(s)) t.asFollowOnOf.delete(f, s);
    for (const d of t.promiseDeps.get(s)) t.consumers.delete(d, s);
    for (const f of t.forwards.get(s)) t.forwardedBy.delete(f, s);
    for (const l of [t.children, t.followOns, t.promiseDeps, t.forwards]) l.set(s, []);
  }

  /** Recomputes finished subtrees, counters and the ready set from scratch. O(jobs + edges). */
  recompute(): void {
    const t = this.t;
    const n = t.size;
    // 0: not visited, 1: on the stack, 2: subtree finished, 3: not finished.
    const mark = new Uint8Array(n);
    const stack = new Int32Array(n);
    const next = new Int32Array(n);
    for (let root = 0; root < n; root++) {
      if (mark[root] !== 0) continue;
      let sp = 0;
      stack[sp] = root;
      next[sp++] = 0;
      mark[root] = 1;
      while (sp > 0) {
        const top = stack[sp - 1]!;
        const succ = this.successor(top, next[sp - 1]!);
        if (succ !== undefined) {
          next[sp - 1]!++;
          if (mark[succ] !== 0) continue;
          mark[succ] = 1;
          stack[sp] = succ;
          next[sp++] = 0;
          continue;
        }
        sp--;
        const finished =
          t.status(top) === DONE && t.children.every(top, (c) => mark[c] === 2) && t.followOns.every(top, (c) => mark[c] === 2);
        mark[top] = finished ? 2 : 3;
      }
    }
    this.ready.clear();
    const open = (l: SlotLists, s: number) => l.count(s, (c) => mark[c] !== 2);
    for (let s = 0; s < n; s++) {
      if (t.status(s) === ABSENT) continue;
      t.setFlag(s, SUBTREE_DONE, mark[s] === 2);
      t.openChildren[s] = open(t.children, s);
      t.openFollowOns[s] = open(t.followOns, s);
    }
    for (let s = 0; s < n; s++) if (t.status(s) !== ABSENT) this.refreshSlot(s);
  }

  /** The i-th successor of a slot (children, then follow-ons), if it has that many. */
  private successor(s: number, i: number): number | undefined {
    const { children, followOns } = this.t;
    const nc = children.len[s]!;
    if (i < nc) return children.pool[children.off[s]! + i];
    if (i < nc + followOns.len[s]!) return followOns.pool[followOns.off[s]! + i - nc];
    return undefined;
  }

  /** Whether a job's value (following forwards) is available. */
  valueReady(id: string): boolean {
    const s = this.t.find(id);
    return s !== undefined && this.valueReadySlot(s, 0);
  }

  private valueReadySlot(s: number, depth: number): boolean {
    if (this.t.status(s) !== DONE || depth > 100) return false;
    return this.t.forwards.every(s, (f) => this.valueReadySlot(f, depth + 1));
  }

  isReady(id: string): boolean {
    const s = this.t.find(id);
    return s !== undefined && this.isReadySlot(s);
  }

  private isReadySlot(s: number): boolean {
    const t = this.t;
    if (t.status(s) !== PENDING || t.has(s, WAITING)) return false;
    if (!t.asChildOf.every(s, (p) => t.status(p) === DONE)) return false;
    if (!t.asFollowOnOf.every(s, (p) => t.status(p) === DONE && t.openChildren[p] === 0)) return false;
    return t.promiseDeps.every(s, (d) => this.valueReadySlot(d, 0));
  }

  /** Puts a job in the ready set if it is ready. */
  refresh(id: string): void {
    const s = this.t.find(id);
    if (s !== undefined) this.refreshSlot(s);
  }

  private refreshSlot(s: number): void {
    if (this.isReadySlot(s)) this.ready.add(this.t.ids[s]!);
    else this.ready.delete(this.t.ids[s]!);
  }

  markIssued(id: string): void {
    const s = this.present(id);
    if (s === undefined) return;
    this.setStatus(s, ISSUED);
    this.ready.delete(id);
  }

  /** An attempt failed and the job will be tried again after a wait. */
  markRetrying(id: string): void {
    const s = this.present(id);
    if (s === undefined) return;
    this.setStatus(s, PENDING);
    this.t.setFlag(s, WAITING, true);
    this.ready.delete(id);
  }

  /** The retry wait is over. */
  endWait(id: string): void {
    const s = this.present(id);
    if (s === undefined) return;
    this.t.setFlag(s, WAITING, false);
    this.refreshSlot(s);
  }

  /** The job failed for good: nothing after it will run. */
  markFailed(id: string): void {
    const s = this.present(id);
    if (s === undefined) return;
    this.setStatus(s, FAILED);
    this.t.setFlag(s, WAITING, false);
    this.ready.delete(id);
  }

  /**
   * The job is done. Its record lists its successors (including new ones, which must have been
   * added already) and the jobs its value forwards to.
   */
  markDone(rec: JobRecord): void {
    const s = this.present(rec.id);
    if (s === undefined) return;
    const t = this.t;
    const newChildren = t.slots(rec.children.slice(t.children.len[s]));
    const newFollowOns = t.slots(rec.followOns.slice(t.followOns.len[s]));
    const forwards = t.slots(rec.forwards ?? []);
    if (newChildren.length > 0) t.children.set(s, [...t.children.get(s), ...newChildren]);
    if (newFollowOns.length > 0) t.followOns.set(s, [...t.followOns.get(s), ...newFollowOns]);
    for (const c of newChildren) {
      t.asChildOf.add(c, s);
      if (!t.has(c, SUBTREE_DONE)) t.openChildren[s]!++;
    }
    for (const f of newFollowOns) {
      t.asFollowOnOf.add(f, s);
      if (!t.has(f, SUBTREE_DONE)) t.openFollowOns[s]!++;
    }
    t.forwards.set(s, forwards);
    for (const f of forwards) t.forwardedBy.add(f, s);
    this.setStatus(s, DONE);
    t.setFlag(s, WAITING, false);
    this.ready.delete(rec.id);
    t.children.every(s, (c) => (this.refreshSlot(c), true));
    if (t.openChildren[s] === 0) this.refreshFollowOns(s);
    this.valueBecameReady(s);
    this.maybeFinish(s);
  }

  private refreshFollowOns(s: number): void {
    this.t.followOns.every(s, (f) => (this.refreshSlot(f), true));
  }

  /** Refreshes the consumers of a job's value, and of values forwarding to it. */
  private valueBecameReady(s: number): void {
    const t = this.t;
    const seen = new Set<number>();
    const stack = [s];
    while (stack.length > 0) {
      const cur = stack.pop()!;
      if (seen.has(cur)) continue;
      seen.add(cur);
      t.consumers.every(cur, (c) => (this.refreshSlot(c), true));
      t.forwardedBy.every(cur, (f) => (stack.push(f), true));
    }
  }

  /** Marks finished subtrees upwards from `s`. */
  private maybeFinish(s: number): void {
    const t = this.t;
    const stack = [s];
    while (stack.length > 0) {
      const cur = stack.pop()!;
      if (t.status(cur) !== DONE || t.has(cur, SUBTREE_DONE) || t.openChildren[cur]! > 0 || t.openFollowOns[cur]! > 0) continue;
      t.setFlag(cur, SUBTREE_DONE, true);
      t.asChildOf.every(cur, (p) => {
        if (t.status(p) === ABSENT) return true;
        t.openChildren[p]!--;
        if (t.openChildren[p] === 0 && t.status(p) === DONE) this.refreshFollowOns(p);
        stack.push(p);
        return true;
      });
      t.asFollowOnOf.every(cur, (p) => {
        if (t.status(p) === ABSENT) return true;
        t.openFollowOns[p]!--;
        stack.push(p);
        return true;
      });
    }
  }

  private idsOf(slots: number[]): string[] {
    return slots.map((s) => this.t.ids[s]!);
  }

  /** Jobs with an edge into `id`, nearest first. */
  predecessorsOf(id: string): string[] {
    const s = this.t.find(id);
    return s === undefined ? [] : this.idsOf([...this.t.asChildOf.get(s), ...this.t.asFollowOnOf.get(s)]);
  }

  /** A job's successors: its children, then its follow-ons (with `staticOnly`, those it had before it ran). */
  successorsOf(id: string, staticOnly = false): string[] {
    const s = this.present(id);
    if (s === undefined) return [];
    const t = this.t;
    const children = t.children.get(s);
    const followOns = t.followOns.get(s);
    if (!staticOnly) return this.idsOf([...children, ...followOns]);
    return this.idsOf([...children.slice(0, t.staticChildren[s]), ...followOns.slice(0, t.staticFollowOns[s])]);
  }

  /** Everything below `id` (successors, transitively), not including `id`. */
  subtreeOf(id: string, staticOnly = false): Set<string> {
    const out = new Set<string>();
    const stack = [id];
    while (stack.length > 0) {
      for (const s of this.successorsOf(stack.pop()!, staticOnly)) {
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
          const pn = this.node(p);
          if (pn?.checkpoint && pn.remainingTries > 1) return p;
          next.push(p);
        }
      }
      frontier = next;
    }
    return undefined;
  }

  /** Up to `limit` pending jobs, for saying which jobs wait when none can run. */
  pending(limit: number): JobView[] {
    const out: JobView[] = [];
    for (let s = 0; s < this.t.size && out.length < limit; s++) if (this.t.status(s) === PENDING) out.push(this.node(this.t.ids[s]!)!);
    return out;
  }

  /** The ids of the jobs present. */
  *presentIds(): Iterable<string> {
    for (let s = 0; s < this.t.size; s++) if (this.t.status(s) !== ABSENT) yield this.t.ids[s]!;
  }

  /** An empty set of this graph's jobs, one bit a job (jobs added later can be put in it too). */
  newJobSet(): { add(id: string): boolean; has(id: string): boolean } {
    let bits: Uint8Array = new Uint8Array(0);
    return {
      add: (id) => {
        const s = this.t.slot(id);
        if (s >> 3 >= bits.length) bits = grownBits(bits, (s >> 3) + 1);
        const had = (bits[s >> 3]! & (1 << (s & 7))) !== 0;
        bits[s >> 3]! |= 1 << (s & 7);
        return !had;
      },
      has: (id) => {
        const s = this.t.find(id);
        return s !== undefined && (bits[s >> 3]! & (1 << (s & 7))) !== 0;
      },
    };
  }

  counts(): { done: number; issued: number; pending: number; failed: number; total: number } {
    const [, pending, issued, done, failed] = this.tally as [number, number, number, number, number];
    return { done, issued, pending, failed, total: pending + issued + done + failed };
  }
}

function grownBits(bits: Uint8Array, need: number): Uint8Array {
  const next = new Uint8Array(Math.max(need, bits.length * 2, 1024));
  next.set(bits);
  return next;
}
