/**
 * The test SimpleDB server's state: domains of items, each item a set of (name, value) pairs,
 * in memory.
 *
 * Eventual consistency: every write appends a version of the item (null: the item is gone) with
 * the time it was made. A consistent read sees the newest version; an eventually consistent read
 * sees the item as it was `consistencyMs` ago — the worst case AWS allows ("a read immediately
 * after a write might not return the updated data"; consistency is "usually reached within a
 * second"). Versions older than that are dropped once a newer one is old enough too. Conditional
 * writes (`Expected`) always test the newest version, as on AWS.
 */

/** Attribute name → its distinct values, in the order they were added. */
export type Attrs = Map<string, string[]>;

interface Version {
  at: number;
  attrs: Attrs | null;
}

export class Domain {
  /** item name → versions, oldest first (never empty) */
  readonly items = new Map<string, Version[]>();
}

export function copyAttrs(a: Attrs | undefined): Attrs {
  return new Map([...(a ?? new Map<string, string[]>())].map(([k, v]) => [k, [...v]]));
}

export function pairCount(a: Attrs): number {
  let n = 0;
  for (const v of a.values()) n += v.length;
  return n;
}

export class SdbStore {
  readonly domains = new Map<string, Domain>();

  constructor(
    private readonly consistencyMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The item as a read sees it: the newest version, or (not `consistent`) the one of `consistencyMs` ago. */
  read(domain: Domain, item: string, consistent: boolean): Attrs | undefined {
    const versions = domain.items.get(item);
    if (versions === undefined) return undefined;
    const newest = versions[versions.length - 1]!;
    if (consistent || this.consistencyMs <= 0) return newest.attrs ?? undefined;
    const cutoff = this.now() - this.consistencyMs;
    const seen = versions.filter((v) => v.at <= cutoff).pop();
    return seen?.attrs ?? undefined;
  }

  /** Records the item's new state (empty: the item is gone). */
  write(domain: Domain, item: string, attrs: Attrs): void {
    const at = this.now();
    const versions = domain.items.get(item) ?? [];
    versions.push({ at, attrs: attrs.size === 0 ? null : attrs });
    this.prune(domain, item, versions);
  }

  private prune(domain: Domain, item: string, versions: Version[]): void {
    const cutoff = this.now() - Math.max(0, this.consistencyMs);
    // keep the newest version at or before the cutoff, and everything after it
    let firstKept = 0;
    for (let i = 0; i < versions.length; i++) if (versions[i]!.at <= cutoff) firstKept = i;
    const kept = versions.slice(firstKept);
    if (kept.length === 1 && kept[0]!.attrs === null && kept[0]!.at <= cutoff) domain.items.delete(item);
    else domain.items.set(item, kept);
  }

  /** Names of the items a read may see, in byte order. */
  itemNames(domain: Domain, consistent: boolean): string[] {
    const names = [...domain.items.keys()].filter((n) => this.read(domain, n, consistent) !== undefined);
    return names.sort(byteOrder);
  }
}

/** Comparison of strings by their UTF-8 bytes, as SimpleDB compares (lexicographically). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
