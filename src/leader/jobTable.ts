/**
 * The leader's per-job storage: every job of the workflow has a dense number (its slot), given
 * the first time its id is seen (as a record, or as a successor or promise named by one), and
 * everything the leader keeps about it lives in typed arrays indexed by that number. No object
 * is made per job: a million jobs are a few dozen typed arrays and one map of ids.
 *
 * Kept per job, and why (bytes are per job at capacity; arrays grow by half, so up to 1.5×):
 * - its id string and the `Map` entry from id to slot (about 90 B, the bulk: measured with
 *   `process.memoryUsage()` over a million 18-character ids), to find a job named by a record;
 * - state bits (1 B): status (absent, pending, issued, done, failed), waiting for a retry,
 *   subtree finished, checkpoint — the graph rules of graphState.ts;
 * - interned name and requirements (4 B each): few distinct values in a workflow;
 * - tries left (4 B), open successors (2 × 4 B), static successor counts (2 × 4 B): retries,
 *   follow-on readiness, checkpoint reruns;
 * - four lists — children, follow-ons, promise dependencies, forwards — as offset and length
 *   (4 × 8 B) into shared Int32Array pools (4 B an entry; a tree has one entry a job per list
 *   it is named in);
 * - four reverse edges — as child of, as follow-on of, value consumed by, value forwarded by —
 *   the first inline (4 × 4 B), the rare others in a map;
 * altogether about 190 B a job at a million jobs (graphState's memory test measures it). Nothing
 * else is kept for a finished job: its record, result and payload stay in the job store.
 */

/** Job status as stored in the low bits of a slot's state byte. */
export const ABSENT = 0;
export const PENDING = 1;
export const ISSUED = 2;
export const DONE = 3;
export const FAILED = 4;
const STATUS_MASK = 7;
export const WAITING = 8;
export const SUBTREE_DONE = 16;
export const CHECKPOINT = 32;

function grown<T extends Int32Array | Uint8Array>(a: T, need: number, fill: number): T {
  if (need <= a.length) return a;
  const next = new (a.constructor as new (n: number) => T)(Math.max(need, Math.ceil(a.length * 1.5), 64));
  next.set(a);
  if (fill !== 0) next.fill(fill, a.length);
  return next;
}

/** Values interned to small numbers: names, requirement shapes. */
export class Interned<T> {
  private readonly byKey = new Map<string, number>();
  readonly values: T[] = [];

  constructor(private readonly keyOf: (v: T) => string) {}

  id(v: T): number {
    const key = this.keyOf(v);
    let n = this.byKey.get(key);
    if (n === undefined) {
      n = this.values.length;
      this.values.push(v);
      this.byKey.set(key, n);
    }
    return n;
  }
}

/**
 * Per-slot lists of slots in one append-only pool. Setting a list writes it at the pool's end
 * (the old entries become garbage, bounded by the one rewrite a job's completion makes).
 */
export class SlotLists {
  pool = new Int32Array(1024);
  private used = 0;
  off = new Int32Array(0);
  len = new Int32Array(0);

  ensure(slots: number): void {
    this.off = grown(this.off, slots, 0);
    this.len = grown(this.len, slots, 0);
  }

  set(slot: number, values: ArrayLike<number>): void {
    this.pool = grown(this.pool, this.used + values.length, 0);
    for (let k = 0; k < values.length; k++) this.pool[this.used + k] = values[k]!;
    this.off[slot] = this.used;
    this.len[slot] = values.length;
    this.used += values.length;
  }

  /** The list as a fresh array. */
  get(slot: number): number[] {
    const out: number[] = [];
    const off = this.off[slot]!;
    for (let k = off, end = off + this.len[slot]!; k < end; k++) out.push(this.pool[k]!);
    return out;
  }

  /** Whether `test` holds for every entry. */
  every(slot: number, test: (s: number) => boolean): boolean {
    const off = this.off[slot]!;
    for (let k = off, end = off + this.len[slot]!; k < end; k++) if (!test(this.pool[k]!)) return false;
    return true;
  }

  count(slot: number, test: (s: number) => boolean): number {
    let n = 0;
    this.every(slot, (s) => (test(s) && n++, true));
    return n;
  }
}

/**
 * Reverse edges: per slot, slots (a list, or with `unique` a set); the first inline, any others
 * in a map.
 */
export class SlotLinks {
  first = new Int32Array(0);
  private readonly more = new Map<number, number[]>();

  constructor(private readonly unique: boolean) {}

  ensure(slots: number): void {
    this.first = grown(this.first, slots, -1);
  }

  add(slot: number, v: number): void {
    const f = this.first[slot]!;
    if (f === -1) return void (this.first[slot] = v);
    const rest = this.more.get(slot);
    if (this.unique && (f === v || rest?.includes(v))) return;
    if (rest) rest.push(v);
    else this.more.set(slot, [v]);
  }

  /** Removes every occurrence of `v`. */
  delete(slot: number, v: number): void {
    const kept = this.get(slot).filter((x) => x !== v);
    this.first[slot] = kept[0] ?? -1;
    if (kept.length > 1) this.more.set(slot, kept.slice(1));
    else this.more.delete(slot);
  }

  every(slot: number, test: (s: number) => boolean): boolean {
    const f = this.first[slot]!;
    if (f === -1) return true;
    if (!test(f)) return false;
    const rest = this.more.get(slot);
    return !rest || rest.every(test);
  }

  get(slot: number): number[] {
    const out: number[] = [];
    this.every(slot, (s) => (out.push(s), true));
    return out;
  }
}

/** The columns: slots, ids and the fixed-size fields. */
export class JobTable {
  private readonly slotOf = new Map<string, number>();
  readonly ids: string[] = [];
  state = new Uint8Array(0);
  name = new Int32Array(0);
  requirements = new Int32Array(0);
  tries = new Int32Array(0);
  openChildren = new Int32Array(0);
  openFollowOns = new Int32Array(0);
  staticChildren = new Int32Array(0);
  staticFollowOns = new Int32Array(0);
  readonly children = new SlotLists();
  readonly followOns = new SlotLists();
  readonly promiseDeps = new SlotLists();
  readonly forwards = new SlotLists();
  readonly asChildOf = new SlotLinks(false);
  readonly asFollowOnOf = new SlotLinks(false);
  readonly consumers = new SlotLinks(true);
  readonly forwardedBy = new SlotLinks(true);

  get size(): number {
    return this.ids.length;
  }

  /** The slot of an id, if it was ever seen. */
  find(id: string): number | undefined {
    return this.slotOf.get(id);
  }

  /** The slot of an id, made (absent) if it was never seen. */
  slot(id: string): number {
    let s = this.slotOf.get(id);
    if (s !== undefined) return s;
    s = this.ids.length;
    this.ids.push(id);
    this.slotOf.set(id, s);
    this.ensure(s + 1);
    return s;
  }

  slots(ids: readonly string[]): number[] {
    return ids.map((id) => this.slot(id));
  }

  private ensure(n: number): void {
    if (n <= this.state.length) return;
    this.state = grown(this.state, n, 0);
    this.name = grown(this.name, n, 0);
    this.requirements = grown(this.requirements, n, 0);
    this.tries = grown(this.tries, n, 0);
    this.openChildren = grown(this.openChildren, n, 0);
    this.openFollowOns = grown(this.openFollowOns, n, 0);
    this.staticChildren = grown(this.staticChildren, n, 0);
    this.staticFollowOns = grown(this.staticFollowOns, n, 0);
    const cap = this.state.length;
    for (const l of [this.children, this.followOns, this.promiseDeps, this.forwards]) l.ensure(cap);
    for (const l of [this.asChildOf, this.asFollowOnOf, this.consumers, this.forwardedBy]) l.ensure(cap);
  }

  status(s: number): number {
    return this.state[s]! & STATUS_MASK;
  }

  setStatus(s: number, status: number): void {
    this.state[s] = (this.state[s]! & ~STATUS_MASK) | status;
  }

  has(s: number, flag: number): boolean {
    return (this.state[s]! & flag) !== 0;
  }

  setFlag(s: number, flag: number, on: boolean): void {
    this.state[s] = on ? this.state[s]! | flag : this.state[s]! & ~flag;
  }
}
