/**
 * The node cache: one directory per node (`<workDir>/toil-cache`; in worker pods under the
 * hostPath `/var/lib/toil`) shared by every worker process and pod of the node, for every job
 * store. The rules (accounting, eviction, fit) are `cacheRules.ts`, the state `cacheDb.ts`, the
 * files and their layout `cacheFiles.ts`, holders and their liveness `cacheHolders.ts`; this is
 * the protocol.
 *
 * Protocol:
 * - **Holders and liveness.** Every process using the cache is a holder whose liveness is a
 *   lock it keeps (`cacheHolders.ts`); a dead holder is reaped: its claims, references and
 *   reservations are deleted.
 * - **Transactions are short.** Every change is one `BEGIN IMMEDIATE … COMMIT` made of
 *   synchronous statements (no await inside), with a busy timeout; downloads, copies and
 *   producers run between transactions, never inside one.
 * - **A miss.** In one transaction a reader finds no entry, makes room (evicting), and inserts
 *   a `filling` entry claimed by itself with a fresh nonce. It downloads to `tmp/<file>.part`,
 *   checks the size, hashes it (sha256), flushes it and makes it read-only; records the digest
 *   (if the claim is still its own), renames the file to `files/<file>`, and in one more
 *   transaction marks the entry `ready` with the file's time (else it discards its copy).
 *   Readers only ever link the file of a `ready` entry, so a partial file is never handed
 *   out; a reader that finds another's `filling` entry waits, and takes the claim over when
 *   its holder is dead: its leftovers are deleted and the download starts again, unless the
 *   digest was recorded (the download was complete), when the entry is adopted as `ready`,
 *   to be checked against its digest before it is served.
 * - **A hit** stats the entry's file and serves it, checks it against its digest first, or
 *   drops it (rule 4 of `cacheRules.ts`); a served one gets a reference (holder, job) and the
 *   next use count in one transaction, then is hard-linked. Referenced entries are never
 *   evicted; references go when the job ends (or its holder is reaped).
 * - **Writes** enter the cache as complete entries, hashed like downloads (a copy made before
 *   the upload, so that the cached bytes are the stored ones), when there is room.
 * - **Reservations**: a job's `disk` requirement is reserved for its run, evicting if needed;
 *   one that can never fit fails with a ResourceError naming the sizes, one that fits later
 *   waits.
 * - **Once per node** (`onceOnNode.ts`): a `once` row claims a producer's run like a
 *   `filling` entry claims a download; a producer that throws or dies frees the claim and the
 *   next waiter runs it in an emptied directory.
 * - **Jobs' directories** are registered before they are made (`trackDir`), so that a killed
 *   worker's directory — its output, and its hard links that keep cached files' blocks in use
 *   — goes when its holder is reaped.
 * - **Capacity** is what the cache and the running jobs may use: the file system's free space
 *   (statfs) plus what is really on disk of the cache's files and of the directories of jobs
 *   with a reservation (allocated blocks, each inode once). It is measured when a process
 *   opens the cache and again, before room is planned, once the last measure is a second
 *   old; other use of the file system shrinks it. Files no entry names are swept when a
 *   process opens the cache and no other holder is alive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ResourceError } from '../errors.js';
import { runOnce, type OnceResult } from './onceOnNode.js';
import { CacheDb, entryView, type EntryRow } from './cacheDb.js';
import { CachePaths, diskUsage, entryFileName, fileDigest, lookAt, removeFiles, settle, type Sealed } from './cacheFiles.js';
import { CacheHolders, type ClaimWait } from './cacheHolders.js';
import { fitsAsIs, judgeCopy, planRoom, type EntryView, type RoomAnswer, type RoomNeed } from './cacheRules.js';
import { LiveLock } from './liveLock.js';
import { sleep } from '../concurrency.js';

/** The cache key of a job store's file: job stores never share entries. */
export function cacheKey(locator: string, fileId: string): string {
  return createHash('sha256').update(locator).update('\0').update(fileId).digest('hex');
}

export interface NodeCacheOptions {
  /** The cache directory (created if missing). */
  dir: string;
  /** Most bytes of cached files (`--cacheSize`). */
  cap?: number | undefined;
  /** What the holder is, for people (`worker 1234 on host`). */
  label?: string;
  /** How long a job waits for disk that others hold before it fails (default 10 minutes). */
  reserveWaitMs?: number;
  /**
   * How long a claim is waited for whose holder's liveness cannot be judged (another user's
   * lock file this process may not open) before a read goes uncached or a once-per-node call
   * fails (default 5 minutes).
   */
  unjudgedWaitMs?: number;
}

type ObtainStep =
  | { kind: 'hit'; file: string }
  | { kind: 'fill'; file: string; evicted: string[] }
  | { kind: 'check'; entry: EntryRow }
  | { kind: 'dropped'; files: string[]; resized: boolean }
  | { kind: 'wait'; owner: string }
  | { kind: 'full'; never: boolean };

/**
 * Where a read was served from: a cache file (linked, read-only) or nowhere (read it
 * yourself); and what the reader is to log (a cached copy found damaged and not served).
 */
export type Obtained = ({ path: string; hit: boolean } | { path: undefined; hit: false }) & { notes: string[] };

export class NodeCache {
  readonly holder = randomBytes(12).toString('hex');
  private readonly paths: CachePaths;
  private readonly db: CacheDb;
  private readonly holders: CacheHolders;
  /** Keeps this holder's lock (and the process's claim to be alive) as long as it is open. */
  private readonly lock: LiveLock;

  private constructor(private readonly opts: NodeCacheOptions) {
    this.paths = new CachePaths(opts.dir);
    this.paths.make();
    this.lock = LiveLock.hold(this.paths.lock(this.holder), this.holder);
    try {
      this.db = CacheDb.open(this.paths.db);
    } catch (e) {
      this.lock.release();
      throw e;
    }
    this.holders = new CacheHolders(this.db, this.paths, this.holder);
  }

  /** Opens the cache in `opts.dir`: reaps dead holders (sweeping unnamed files when no other lives), and measures it. */
  static open(opts: NodeCacheOptions): NodeCache {
    const cache = new NodeCache(opts);
    try {
      cache.db.tx(() => cache.db.addHolder(cache.holder, opts.label ?? `pid ${process.pid}`));
      if (cache.holders.reapDead() === 0) cache.sweep();
      cache.measure();
      return cache;
    } catch (e) {
      cache.abandon();
      throw e;
    }
  }

  get dir(): string {
    return this.opts.dir;
  }

  /** Releases this holder: its references, reservations and claims go, and its lock. */
  close(): void {
    this.holders.reap(this.holder);
    this.db.close();
    this.lock.release();
  }

  /** A cache that failed to open: its database and its lock go (its rows, if any, are reaped as a dead holder's). */
  private abandon(): void {
    try {
      this.db.close();
    } finally {
      this.lock.release();
    }
  }

  // ---- reads and writes ----

  /**
   * Makes sure the file `key` (of `size` bytes, fetched by `fetch(dest)` on a miss) is in the
   * cache, held for `job`: its path, and whether it was there already. When it does not fit
   * (everything is in use), `path` is undefined: the caller reads it uncached. `what` names
   * the file in notes.
   */
  async obtain(args: { key: string; size: number; job: string; what?: string; fetch: (dest: string) => Promise<void> }): Promise<Obtained> {
    let reaped = false;
    const claims = this.claimWait();
    const notes: string[] = [];
    const uncached = { path: undefined, hit: false as const, notes };
    for (;;) {
      this.measureIfStale();
      const step = this.db.tx(() => this.obtainStep(args));
      if (step.kind === 'hit') return { path: this.paths.file(step.file), hit: true, notes };
      if (step.kind === 'fill') {
        removeFiles(this.paths.entryFiles(step.evicted));
        const got = await this.fill({ ...args, file: step.file });
        if (got) return { path: got, hit: false, notes };
        continue; // the claim was taken over: look again
      }
      if (step.kind === 'check' && (await this.check(args.key, step.entry)) === 'mismatch')
        notes.push(damaged(args.what ?? args.key, 'its bytes do not match its sha256 digest'));
      if (step.kind === 'dropped') {
        removeFiles(this.paths.entryFiles(step.files));
        if (step.resized) notes.push(damaged(args.what ?? args.key, 'its size changed'));
      }
      if (step.kind === 'full') {
        if (step.never || reaped) return uncached;
        reaped = true;
        this.holders.reapDead();
      }
      if (step.kind === 'wait' && (await claims.wait(step.owner)) === 'give-up') return uncached;
    }
  }

  /**
   * Puts a complete local file into the cache as `key` (moving it there) when it fits; else
   * removes it. Returns whether it was cached.
   */
  async admit(args: { key: string; source: string }): Promise<boolean> {
    const size = (await stat(args.source)).size;
    const file = entryFileName(args.key);
    const sealed = await settle(args.source);
    await rename(args.source, this.paths.file(file));
    this.measureIfStale();
    const evicted = this.db.tx(() => {
      if (this.db.entry(args.key)) return undefined;
      const room = this.room({ bytes: size, as: 'entry' });
      if (!room.ok) return undefined;
      const gone = this.db.evict(room.evict);
      this.db.insertEntry({ key: args.key, size, file, ...sealed });
      return gone;
    });
    if (!evicted) {
      await rm(this.paths.file(file), { force: true });
      return false;
    }
    removeFiles(this.paths.entryFiles(evicted));
    return true;
  }

  /** A fresh path in the cache's own directory for a file about to be admitted. */
  tempPath(): string {
    return this.paths.temp();
  }

  /** Drops the entry `key` if nobody holds it (its file was deleted from the job store). */
  forget(key: string): void {
    const files = this.db.tx(() => {
      const e = this.db.entry(key);
      if (!e || e.state !== 'ready' || this.db.refCount(key) > 0) return [];
      return this.db.evict([key]);
    });
    removeFiles(this.paths.entryFiles(files));
  }

  // ---- the jobs' directories ----

  /**
   * Registers the directory `dir` that `job` is about to make, so that it is removed if this
   * process dies; false (not registered) if it is not in the cache's work directory.
   */
  trackDir(dir: string, job: string): boolean {
    const rel = this.paths.jobDirName(dir);
    if (rel === undefined) return false;
    this.db.tx(() => this.db.trackDir(rel, this.holder, job));
    return true;
  }

  /** Room for `need` (inside a transaction): from the sums when it fits as it is, else from every entry. */
  private room(need: RoomNeed): RoomAnswer {
    if (fitsAsIs(this.db.totals(this.opts.cap), need)) return { ok: true, evict: [] };
    return planRoom(this.db.space(this.opts.cap), need);
  }

  /** Forgets a directory its job has removed. */
  untrackDir(dir: string): void {
    const rel = this.paths.jobDirName(dir);
    if (rel !== undefined) this.db.tx(() => this.db.untrackDir(rel));
  }

  // ---- job reservations ----

  /** Reserves `bytes` of disk for `job` while it runs: evicts, waits, or fails naming the sizes. */
  async reserve(job: string, bytes: number): Promise<void> {
    const until = Date.now() + (this.opts.reserveWaitMs ?? 600_000);
    for (let round = 0; ; round++) {
      this.measureIfStale();
      const answer = this.db.tx(() => {
        const room = this.room({ bytes, as: 'reservation' });
        if (!room.ok) return room;
        const gone = this.db.evict(room.evict);
        this.db.reserve(this.holder, job, bytes);
        return { ok: true as const, gone };
      });
      if (answer.ok) return removeFiles(this.paths.entryFiles(answer.gone));
      if (answer.never) throw new ResourceError(`${answer.why} on the node's cache file system (${this.dir})`, { resource: 'disk' });
      if (Date.now() > until)
        throw new ResourceError(
          `${answer.why}; waited ${Math.round((this.opts.reserveWaitMs ?? 600_000) / 1000)}s for other jobs on the node to finish`,
          { resource: 'disk' },
        );
      if (round === 0) this.holders.reapDead();
      await sleep(Math.min(2000, 100 * 2 ** Math.min(round, 5)));
    }
  }

  /** Ends `job`'s use of the cache: its reservation and references go. */
  release(job: string): void {
    this.db.tx(() => this.db.release(this.holder, job));
  }

  // ---- once per node ----

  /**
   * Runs `produce(dir)` once per node for `key` while concurrent callers wait, and gives every
   * caller the directory (`onceOnNode.ts`): the key is `scope`'s (a job store's locator), or
   * shared by every workflow on the node when no scope is given.
   */
  onceOnNode(key: string, produce: (dir: string) => Promise<void>, opts: { scope?: string | undefined } = {}): Promise<OnceResult> {
    const context = { db: this.db, paths: this.paths, me: this.holder, claimWait: () => this.claimWait() };
    return runOnce(context, { key, scope: opts.scope }, produce);
  }

  // ---- inspection (tests, status) ----

  /** The entries, most recently used last. */
  entries(): Array<EntryView & { file: string }> {
    return this.db.entryRows().map((r) => ({ ...entryView(r, this.db.refCount(r.key)), file: this.paths.file(r.file) }));
  }

  /** The size of a complete entry, if the cache has one (saves asking the job store on a hit). */
  cachedSize(key: string): number | undefined {
    const e = this.db.entry(key);
    return e?.state === 'ready' ? e.size : undefined;
  }

  capacity(): number {
    return this.db.meta('capacity') ?? 0;
  }

  private claimWait(): ClaimWait {
    return this.holders.claimWait(this.opts.unjudgedWaitMs ?? 300_000);
  }

  // ---- inside transactions ----

  private obtainStep(args: { key: string; size: number; job: string }): ObtainStep {
    const e = this.db.entry(args.key);
    if (e?.state === 'ready') {
      const now = lookAt(this.paths.file(e.file));
      const verdict = judgeCopy(e, now);
      if (verdict === 'verify') return { kind: 'check', entry: e };
      if (verdict === 'drop') return { kind: 'dropped', files: this.db.evict([e.key]), resized: now !== undefined };
      this.db.hold(args.key, this.holder, args.job);
      return { kind: 'hit', file: e.file };
    }
    if (e) return { kind: 'wait', owner: e.owner ?? '' };
    const room = this.room({ bytes: args.size, as: 'entry' });
    if (!room.ok) return { kind: 'full', never: room.never };
    const evicted = this.db.evict(room.evict);
    const file = entryFileName(args.key);
    this.db.insertEntry({ key: args.key, size: args.size, file, owner: this.holder });
    return { kind: 'fill', file, evicted };
  }

  // ---- files ----

  /**
   * Reads a complete entry's file and checks it against its digest: `ok` (its time is
   * recorded: the next reader only stats it), else the entry is dropped, to be downloaded
   * again (`mismatch`, or `gone` when its file could not be read).
   */
  private async check(key: string, e: EntryRow): Promise<'ok' | 'mismatch' | 'gone'> {
    const file = this.paths.file(e.file);
    const before = lookAt(file);
    const digest = await fileDigest(file).catch(() => undefined);
    if (before && digest === e.digest) {
      this.db.tx(() => this.db.verified(key, e.file, before.mtime));
      return 'ok';
    }
    removeFiles(this.paths.entryFiles(this.db.tx(() => this.db.drop(key, e.file))));
    return digest === undefined ? 'gone' : 'mismatch';
  }

  /** Downloads a claimed entry and publishes it; undefined if the claim was lost meanwhile. */
  private async fill(args: {
    key: string;
    size: number;
    job: string;
    file: string;
    fetch: (dest: string) => Promise<void>;
  }): Promise<string | undefined> {
    const part = this.paths.part(args.file);
    const final = this.paths.file(args.file);
    let sealed: Sealed;
    try {
      await args.fetch(part);
      sealed = await settle(part, args.size);
      // Complete: if this process dies now, the next reader adopts the file once it matches.
      if (!this.db.tx(() => this.db.recordDigest(args.key, this.holder, args.file, sealed.digest))) {
        removeFiles([part]);
        return undefined;
      }
      await rename(part, final);
    } catch (e) {
      this.db.tx(() => this.db.dropClaim(args.key, this.holder, args.file));
      removeFiles([part, final]);
      throw e;
    }
    const published = this.db.tx(() => {
      if (!this.db.publish(args.key, this.holder, args.file, sealed.mtime)) return false;
      this.db.hold(args.key, this.holder, args.job);
      return true;
    });
    if (!published) {
      removeFiles([final]);
      return undefined;
    }
    return final;
  }

  /** Removes files no entry names (only while no other holder is alive). */
  private sweep(): void {
    const named = this.db.entryFiles();
    for (const sub of ['files', 'tmp']) {
      for (const f of readdirSync(path.join(this.dir, sub))) {
        if (!named.has(f.replace(/\.part$/, ''))) rmSync(path.join(this.dir, sub, f), { force: true });
      }
    }
  }

  /** The capacity: the file system's free space plus what the cache and the reserved jobs' directories really use. */
  private measure(): void {
    const fs = statfsSync(this.dir);
    const own = [path.join(this.dir, 'files'), path.join(this.dir, 'tmp')];
    const dirs = this.db.reservedDirs().flatMap((rel) => this.paths.jobDir(rel) ?? []);
    const used = diskUsage([...own, ...dirs], statSync(this.dir).dev);
    this.db.tx(() => {
      this.db.setMeta('capacity', fs.bavail * fs.bsize + used);
      this.db.setMeta('measured', Date.now());
    });
  }

  /** Measures again when the last measure (by any process) is older than MEASURE_EVERY_MS. */
  private measureIfStale(): void {
    if (Date.now() - (this.db.meta('measured') ?? 0) >= MEASURE_EVERY_MS) this.measure();
  }
}

/** A note for the log: a cached copy that was not served. */
function damaged(what: string, how: string): string {
  return `the node's cached copy of ${what} was damaged (${how}): not used, downloaded again`;
}

/** How old the capacity may get before it is measured again (statfs, and a walk of the cache's and the jobs' files). */
const MEASURE_EVERY_MS = 1000;

const shared = new Map<string, NodeCache | { failed: unknown }>();

/**
 * The process's node cache for `opts.dir` and cap: opened once, kept open (its lock says the
 * process lives). One that failed to open is not tried again by this process: the same error.
 */
export function sharedNodeCache(opts: NodeCacheOptions): NodeCache {
  const id = `${path.resolve(opts.dir)}\0${opts.cap ?? ''}`;
  let cache = shared.get(id);
  if (!cache) {
    try {
      cache = NodeCache.open(opts);
    } catch (e) {
      cache = { failed: e };
    }
    shared.set(id, cache);
  }
  if (cache instanceof NodeCache) return cache;
  throw cache.failed;
}
