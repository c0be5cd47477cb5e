/**
 * The rules of the node cache, as pure functions (the SQLite and file-system side is
 * `nodeCache.ts`). The cache and the jobs running on a node share one file system:
 *
 * 1. **Accounting.** Bytes in use = the sizes of all cache entries (complete or being filled)
 *    + the `disk` reservations of the jobs running on the node. They never exceed the
 *    capacity (the file system's free space plus what the cache holds, measured when the node
 *    is quiet). With a cap (`--cacheSize`), the entries alone never exceed the cap.
 * 2. **Eviction.** Only complete entries that no job holds may be evicted, least recently
 *    used first (a use counter, not a clock, orders them), and only as many as needed. An
 *    entry being filled, or linked into a running job, is never evicted: removing it would
 *    free no space.
 * 3. **Fit.** Room for `bytes` is found by evicting (rule 2); if it cannot be found even so,
 *    the answer says whether it never can (larger than the capacity or the cap) or whether
 *    it must wait for others to finish. A file that does not fit is read uncached; a job whose
 *    reservation never fits fails, naming the sizes.
 * 4. **Integrity.** A complete entry records its size, the sha256 digest of its bytes and its
 *    file's modification time when it is published. A reader serves it when its file is
 *    there with that size and time (a stat, no read); a file whose time changed (written
 *    through a link), or whose time is not yet known (a copy adopted from a downloader that
 *    died before publishing it), is read and its digest checked first; one of another size,
 *    or gone, or whose digest does not match, is dropped and downloaded again. Entries of
 *    older versions carry no digest: their size is all that is checked.
 * 5. **Claims.** A claim (an entry being filled, a once-per-node producer running) belongs to a
 *    holder, a live process. Somebody else's claim is waited for while its holder lives and
 *    taken over when it is dead; liveness is a lock the holder's process holds, which the
 *    kernel drops when the process dies (never a PID: pods on one node do not share PIDs).
 */

import { formatSize } from '../size.js';

export interface EntryView {
  key: string;
  size: number;
  /** The use counter at the entry's last use (larger is more recent). */
  lastUsed: number;
  /** Running jobs that hold it. */
  refs: number;
  state: 'filling' | 'ready';
}

export interface SpaceView {
  /** Bytes the cache and the running jobs may use together. */
  capacity: number;
  /** Most bytes the entries may use (`--cacheSize`), if capped. */
  cap?: number | undefined;
  entries: readonly EntryView[];
  /** Sum of the running jobs' disk reservations. */
  reserved: number;
}

export type RoomAnswer = { ok: true; evict: string[] } | { ok: false; never: boolean; why: string };

/** The sums rule 1 counts, without the entries: enough to see that something fits as it is. */
export interface SpaceTotals {
  capacity: number;
  cap?: number | undefined;
  /** Bytes held by cache entries. */
  cached: number;
  reserved: number;
}

export interface RoomNeed {
  bytes: number;
  as: 'entry' | 'reservation';
}

/** Whether `need` fits once `freed` bytes of entries are evicted (rules 1 and 3). */
function fitsFreeing(t: SpaceTotals, need: RoomNeed, freed: number): boolean {
  const extra = need.bytes - freed;
  const disk = t.capacity - t.reserved - t.cached - extra;
  const cap = need.as === 'entry' && t.cap !== undefined ? t.cap - t.cached - extra : Infinity;
  return disk >= 0 && cap >= 0;
}

/**
 * Whether `need` fits as things are, evicting nothing: the common case, decided from the sums
 * alone (a job's reservation on a node whose cache holds many files need not read them all).
 * When it is false, {@link planRoom} decides, from the entries.
 */
export function fitsAsIs(t: SpaceTotals, need: RoomNeed): boolean {
  return fitsFreeing(t, need, 0);
}

/** Bytes held by cache entries. */
export function cachedBytes(entries: readonly EntryView[]): number {
  return entries.reduce((n, e) => n + e.size, 0);
}

/** Entries that may be evicted, in eviction order: complete, unheld, least recently used first. */
export function evictionOrder(entries: readonly EntryView[]): EntryView[] {
  return entries
    .filter((e) => e.state === 'ready' && e.refs === 0)
    .sort((a, b) => a.lastUsed - b.lastUsed || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Room for `bytes` more, either as a cache entry (counted against the cap too) or as a job's
 * reservation (counted against the capacity only): which entries to evict, or why not.
 */
export function planRoom(view: SpaceView, need: RoomNeed): RoomAnswer {
  const totals: SpaceTotals = { capacity: view.capacity, cap: view.cap, cached: cachedBytes(view.entries), reserved: view.reserved };
  const never = need.bytes > view.capacity || (need.as === 'entry' && view.cap !== undefined && need.bytes > view.cap);
  if (never) return { ok: false, never: true, why: describe(view, need) };
  const evict: string[] = [];
  let freed = 0;
  for (const e of [undefined, ...evictionOrder(view.entries)]) {
    if (e) {
      evict.push(e.key);
      freed += e.size;
    }
    if (fitsFreeing(totals, need, freed)) return { ok: true, evict };
  }
  return { ok: false, never: false, why: describe(view, need) };
}

/** The sizes, for people: what was asked for and where the space is. */
function describe(view: SpaceView, need: RoomNeed): string {
  const cached = cachedBytes(view.entries);
  const held = cached - cachedBytes(evictionOrder(view.entries));
  const what = need.as === 'entry' ? `a file of ${formatSize(need.bytes)}` : `a job's disk requirement of ${formatSize(need.bytes)}`;
  const cap = view.cap !== undefined ? `, cache cap ${formatSize(view.cap)}` : '';
  return (
    `${what} does not fit: capacity ${formatSize(view.capacity)}${cap}; ` +
    `in use ${formatSize(view.reserved)} reserved by running jobs and ${formatSize(cached)} cached (${formatSize(held)} of it held by running jobs or being downloaded)`
  );
}

/** A complete entry as recorded when it was published. */
export interface RecordedCopy {
  size: number;
  digest: string | null;
  /** Its file's modification time (ns), or null when not yet checked. */
  mtime: string | null;
}

/** What a reader does with a complete entry, given its file now (undefined: not there): rule 4. */
export function judgeCopy(recorded: RecordedCopy, now: { size: number; mtime: string } | undefined): 'serve' | 'verify' | 'drop' {
  if (!now || now.size !== recorded.size) return 'drop';
  if (recorded.digest === null) return 'serve';
  return recorded.mtime === now.mtime ? 'serve' : 'verify';
}

/** What to do about a claim on a key: it is ours, somebody's live one, or free to take. */
export function judgeClaim(
  claim: { owner: string } | undefined,
  me: string,
  ownerAlive: (owner: string) => boolean,
): 'free' | 'mine' | 'wait' | 'takeover' {
  if (!claim) return 'free';
  if (claim.owner === me) return 'mine';
  return ownerAlive(claim.owner) ? 'wait' : 'takeover';
}

/** Per-job cache counters, sent to the leader with a job's stats and summed there. */
export interface CacheStats {
  /** Reads served from the cache. */
  hits: number;
  /** Reads that downloaded the file (into the cache, or privately when it did not fit). */
  misses: number;
  /** Bytes that hits did not download. */
  hitBytes: number;
  /** Bytes downloaded by misses. */
  missBytes: number;
}

export function emptyStats(): CacheStats {
  return { hits: 0, misses: 0, hitBytes: 0, missBytes: 0 };
}

export function addStats(a: CacheStats, b: CacheStats): CacheStats {
  return { hits: a.hits + b.hits, misses: a.misses + b.misses, hitBytes: a.hitBytes + b.hitBytes, missBytes: a.missBytes + b.missBytes };
}

/** One line: `12 hits, 2 misses; 1.5 GiB not downloaded, 256 MiB downloaded`. */
export function formatStats(s: CacheStats): string {
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : w.endsWith('s') ? 'es' : 's'}`;
  return `${plural(s.hits, 'hit')}, ${plural(s.misses, 'miss')}; ${formatSize(s.hitBytes)} not downloaded, ${formatSize(s.missBytes)} downloaded`;
}
