/** In-memory object store with etcd-like resource versions, an event history (compactable) and listeners. */
/** An API object inside the server, walked dynamically (not exported from the package). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- objects of every kind, read by field path
export type Obj = Record<string, any>;
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export interface StoreEvent {
  type: EventType;
  rv: number;
  res: string;
  obj: Obj;
  prev?: Obj;
}

export const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
export const key = (ns: string | undefined, name: string): string => `${ns ?? ''}/${name}`;

export class Store {
  rv = 100;
  /** events with rv <= compactedRv are no longer available to watches */
  compactedRv = 100;
  private data = new Map<string, Map<string, Obj>>();
  private byUid = new Map<string, { res: string; obj: Obj }>();
  private history: StoreEvent[] = [];
  private listeners = new Set<(e: StoreEvent) => void>();
  constructor(private historySize = 20000) {}

  private bucket(res: string): Map<string, Obj> {
    let b = this.data.get(res);
    if (!b) {
      b = new Map();
      this.data.set(res, b);
    }
    return b;
  }
  get(res: string, ns: string | undefined, name: string): Obj | undefined {
    const o = this.bucket(res).get(key(ns, name));
    return o ? clone(o) : undefined;
  }
  /** Shared (not cloned) view, for controllers that only read. */
  peek(res: string, ns: string | undefined, name: string): Obj | undefined {
    return this.bucket(res).get(key(ns, name));
  }
  list(res: string, ns?: string): Obj[] {
    const out: Obj[] = [];
    for (const o of this.bucket(res).values()) if (ns === undefined || o.metadata.namespace === ns) out.push(o);
    return out;
  }
  byUID(uid: string): { res: string; obj: Obj } | undefined {
    return this.byUid.get(uid);
  }
  allResources(): string[] {
    return [...this.data.keys()];
  }

  private emit(type: EventType, res: string, obj: Obj, prev?: Obj): void {
    const e: StoreEvent = { type, rv: this.rv, res, obj, ...(prev ? { prev } : {}) };
    this.history.push(e);
    if (this.history.length > this.historySize) {
      const drop = this.history.splice(0, this.history.length - this.historySize);
      this.compactedRv = drop[drop.length - 1]!.rv;
    }
    for (const l of [...this.listeners]) l(e);
  }
  /** Stores a new object (caller ensures it does not exist); sets resourceVersion. */
  create(res: string, obj: Obj): Obj {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const stored = clone(obj);
    this.bucket(res).set(key(obj.metadata.namespace, obj.metadata.name), stored);
    this.byUid.set(stored.metadata.uid, { res, obj: stored });
    this.emit('ADDED', res, stored);
    return clone(stored);
  }
  update(res: string, obj: Obj): Obj {
    const k = key(obj.metadata.namespace, obj.metadata.name);
    const prev = this.bucket(res).get(k);
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const stored = clone(obj);
    this.bucket(res).set(k, stored);
    this.byUid.set(stored.metadata.uid, { res, obj: stored });
    this.emit('MODIFIED', res, stored, prev);
    return clone(stored);
  }
  remove(res: string, ns: string | undefined, name: string): Obj | undefined {
    const k = key(ns, name);
    const prev = this.bucket(res).get(k);
    if (!prev) return undefined;
    this.bucket(res).delete(k);
    this.byUid.delete(prev.metadata.uid);
    this.rv++;
    const gone = clone(prev);
    gone.metadata.resourceVersion = String(this.rv);
    this.emit('DELETED', res, gone, prev);
    return clone(gone);
  }
  /** Events after `rv` for `res`, or undefined when `rv` has been compacted away. */
  since(res: string, rv: number): StoreEvent[] | undefined {
    if (rv < this.compactedRv) return undefined;
    return this.history.filter((e) => e.rv > rv && e.res === res);
  }
  /** Drops the whole event history (like an etcd compaction at the current revision). */
  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }
  on(l: (e: StoreEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

// ------------------------------------------------------------------------------------ selectors

export interface Requirement {
  key: string;
  op: 'in' | 'notin' | 'exists' | '!' | '=' | '!=' | 'gt' | 'lt';
  values: string[];
}
export class SelectorError extends Error {}

export function parseLabelSelector(s: string | undefined): Requirement[] {
  const out: Requirement[] = [];
  if (!s) return out;
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  for (const raw of parts) {
    const p = raw.trim();
    if (!p) continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(p)))
      out.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((x) => x.trim()) });
    else if ((m = /^!\s*(\S+)$/.exec(p))) out.push({ key: m[1]!, op: '!', values: [] });
    else if ((m = /^([^=!<>\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(p))) out.push({ key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] });
    else if ((m = /^([^=!<>\s]+)\s*([<>])\s*(\S+)$/.exec(p))) out.push({ key: m[1]!, op: m[2] === '>' ? 'gt' : 'lt', values: [m[3]!] });
    else if (/^[A-Za-z0-9][-A-Za-z0-9_./]*$/.test(p)) out.push({ key: p, op: 'exists', values: [] });
    else throw new SelectorError(`unable to parse requirement: found '${p}', expected: identifier`);
  }
  return out;
}

export function matchRequirements(reqs: Requirement[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case '=':
        return has && v === r.values[0];
      case '!=':
        return !has || v !== r.values[0];
      case 'in':
        return has && r.values.includes(v!);
      case 'notin':
        return !has || !r.values.includes(v!);
      case 'exists':
        return has;
      case '!':
        return !has;
      case 'gt':
        return has && Number(v) > Number(r.values[0]);
      case 'lt':
        return has && Number(v) < Number(r.values[0]);
      default:
        return false;
    }
  });
}

/** A LabelSelector object (matchLabels + matchExpressions). */
export function matchLabelSelector(sel: Obj | undefined, labels: Record<string, string> | undefined): boolean {
  if (!sel) return false;
  const reqs: Requirement[] = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => ({ key: k, op: '=' as const, values: [String(v)] }));
  for (const e of (sel.matchExpressions ?? []) as Obj[]) {
    const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' } as Record<string, Requirement['op']>)[e.operator];
    if (op) reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return matchRequirements(reqs, labels);
}
