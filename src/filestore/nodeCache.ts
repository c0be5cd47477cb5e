/**
 * The node cache: one directory per node (`<workDir>/toil-cache`; in worker pods under the
 * hostPath `/var/lib/toil`) shared by every worker process and pod of the node, for every job
 * store. The rules (accounting, eviction, fit) are `cacheRules.ts`; this is the protocol.
 *
 * Layout: `cache.db` (SQLite, WAL mode), `files/<key>.<nonce>` (complete entries, read-only),
 * `tmp/` (downloads in progress), `holders/<id>.lock` (one per live process), `once/<key>`
 * (directories made by once-per-node producers).
 *
 * Protocol:
 * - **Holders and liveness.** A process using the cache is a holder with a random id. It
 *   creates `holders/<id>.lock` (a SQLite file) and keeps an exclusive lock on it for its
 *   whole life, before registering in `cache.db`. Another process judges it alive when that
 *   lock cannot be taken. The kernel drops the lock when the process dies (SIGKILL included),
 *   and file locks hold across PID and mount namespaces on one node, so a dead holder is
 *   found at once and a busy one (an event loop blocked by a long computation) is never taken
 *   for dead. A dead holder is reaped: its claims, references and reservations are deleted.
 * - **Transactions are short.** Every change is one `BEGIN IMMEDIATE … COMMIT` made of
 *   synchronous statements (no await inside), with a busy timeout; downloads, copies and
 *   producers run between transactions, never inside one.
 * - **A miss.** In one transaction a reader finds no entry, makes room (evicting), and inserts
 *   a `filling` entry claimed by itself with a fresh nonce. It downloads to `tmp/<file>.part`,
 *   checks the size, flushes it, makes it read-only and renames it to `files/<file>`; then
 *   one transaction marks the entry `ready` if the claim is still its own (else it discards
 *   its copy). Readers only ever link the file of a `ready` entry, so a partial file is never
 *   handed out; a reader that finds another's `filling` entry waits, and takes the claim over
 *   when its holder is dead (its leftovers are deleted, the download starts again).
 * - **A hit** adds a reference (holder, job) and bumps the entry's use counter in one
 *   transaction, then hard-links the file. Referenced entries are never evicted; references go
 *   when the job ends (or its holder is reaped).
 * - **Writes** enter the cache as complete entries (a copy made before the upload, so that
 *   the cached bytes are the stored ones), when there is room.
 * - **Reservations**: a job's `disk` requirement is reserved for its run, evicting if needed;
 *   one that can never fit fails with a ResourceError naming the sizes, one that fits later
 *   waits.
 * - **Once per node**: a `once` row (key, state, owner) claims a producer's run like a
 *   `filling` entry claims a download; a producer that throws or dies frees the claim and the
 *   next waiter runs it in an emptied directory.
 * - **Capacity** is measured (free space + cached bytes) when a process opens the cache and
 *   no other holder is alive; files no entry names are swept then too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, statfsSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { sleep } from '../concurrency.js';
import { ResourceError, TransientError } from '../errors.js';
import { judgeClaim, planRoom, type EntryView } from './cacheRules.js';
import { lockHolder, LiveLock } from './liveLock.js';
import { isBusy, openDatabase, transaction } from './sqlite.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holders(id TEXT PRIMARY KEY, started INTEGER NOT NULL, label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(key TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT, file TEXT NOT NULL, last_used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refs(key TEXT NOT NULL, holder TEXT NOT NULL, job TEXT NOT NULL, PRIMARY KEY(key, holder, job));
CREATE TABLE IF NOT EXISTS reservations(holder TEXT NOT NULL, job TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY(holder, job));
CREATE TABLE IF NOT EXISTS once(key TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT NOT NULL, dir TEXT NOT NULL);
`;

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
}

interface EntryRow {
  key: string;
  size: number;
  state: 'filling' | 'ready';
  owner: string | null;
  file: string;
  last_used: number;
}

type ObtainStep =
  | { kind: 'hit'; file: string }
  | { kind: 'fill'; file: string; evicted: string[] }
  | { kind: 'wait'; owner: string }
  | { kind: 'full'; never: boolean };

/** Where a read was served from: a cache file (linked, read-only) or nowhere (read it yourself). */
export type Obtained = { path: string; hit: boolean } | { path: undefined; hit: false };

export class NodeCache {
  readonly holder = randomBytes(12).toString('hex');
  private readonly db: DatabaseSync;
  /** Keeps this holder's lock (and the process's claim to be alive) as long as it is open. */
  private readonly lock: LiveLock;

  private constructor(
    readonly dir: string,
    private readonly opts: NodeCacheOptions,
  ) {
    for (const d of ['files', 'tmp', 'holders', 'once']) mkdirSync(path.join(dir, d), { recursive: true });
    this.lock = LiveLock.hold(this.lockFile(this.holder), this.holder);
    try {
      this.db = openDatabase(path.join(dir, 'cache.db'), 30_000);
    } catch (e) {
      this.lock.release();
      throw e;
    }
  }

  /** Opens the cache in `opts.dir`, reaping dead holders; measures it when nobody else is using it. */
  static open(opts: NodeCacheOptions): NodeCache {
    const cache = new NodeCache(opts.dir, opts);
    try {
      cache.register();
      const quiet = cache.reapDead() === 0;
      if (quiet) cache.sweep();
      if (quiet || cache.meta('capacity') === undefined) cache.measure();
      return cache;
    } catch (e) {
      cache.abandon();
      throw e;
    }
  }

  /** Sets the database up and registers this holder. */
  private register(): void {
    retryBusy(() => this.db.exec('PRAGMA journal_mode = WAL'));
    this.db.exec('PRAGMA synchronous = NORMAL');
    retryBusy(() => this.db.exec(SCHEMA));
    transaction(this.db, () =>
      this.db
        .prepare('INSERT INTO holders(id, started, label) VALUES (?, ?, ?)')
        .run(this.holder, Date.now(), this.opts.label ?? `pid ${process.pid}`),
    );
  }

  /** A cache that failed to open: its database and its lock go (its rows, if any, are reaped as a dead holder's). */
  private abandon(): void {
    try {
      this.db.close();
    } finally {
      this.lock.release();
    }
  }

  /** Releases this holder: its references, reservations and claims go, and its lock. */
  close(): void {
    const files = transaction(this.db, () => this.forgetHolder(this.holder));
    this.removeFiles(files);
    this.db.close();
    this.lock.release();
  }

  // ---- reads and writes ----

  /**
   * Makes sure the file `key` (of `size` bytes, fetched by `fetch(dest)` on a miss) is in the
   * cache, held for `job`: its path, and whether it was there already. When it does not fit
   * (everything is in use), `path` is undefined: the caller reads it uncached.
   */
  async obtain(args: { key: string; size: number; job: string; fetch: (dest: string) => Promise<void> }): Promise<Obtained> {
    let reaped = false;
    for (let round = 0; ; round++) {
      const step = transaction(this.db, () => this.obtainStep(args));
      if (step.kind === 'hit') return { path: this.filePath(step.file), hit: true };
      if (step.kind === 'fill') {
        this.removeFiles(step.evicted);
        const got = await this.fill({ ...args, file: step.file });
        if (got) return { path: got, hit: false };
        continue; // the claim was taken over: look again
      }
      if (step.kind === 'full') {
        if (step.never || reaped) return { path: undefined, hit: false };
        reaped = true;
        this.reapDead();
        continue;
      }
      await this.waitFor(step.owner, round);
    }
  }

  /**
   * Puts a complete local file into the cache as `key` (moving it there) when it fits; else
   * removes it. Returns whether it was cached.
   */
  async admit(args: { key: string; source: string }): Promise<boolean> {
    const size = (await stat(args.source)).size;
    const file = `${args.key}.${randomBytes(4).toString('hex')}`;
    await chmod(args.source, 0o444);
    await rename(args.source, this.filePath(file));
    const evicted = transaction(this.db, () => {
      if (this.entry(args.key)) return undefined;
      const room = planRoom(this.space(), { bytes: size, as: 'entry' });
      if (!room.ok) return undefined;
      const gone = this.evict(room.evict);
      this.db
        .prepare("INSERT INTO entries(key, size, state, owner, file, last_used) VALUES (?, ?, 'ready', NULL, ?, ?)")
        .run(args.key, size, file, this.tick());
      return gone;
    });
    if (!evicted) {
      await rm(this.filePath(file), { force: true });
      return false;
    }
    this.removeFiles(evicted);
    return true;
  }

  /** A fresh path in the cache's own directory for a file about to be admitted. */
  tempPath(): string {
    return path.join(this.dir, 'tmp', `w-${randomBytes(8).toString('hex')}.part`);
  }

  /** Drops the entry `key` if nobody holds it (its file was deleted from the job store). */
  forget(key: string): void {
    const files = transaction(this.db, () => {
      const e = this.entry(key);
      if (!e || e.state !== 'ready' || this.refCount(key) > 0) return [];
      return this.evict([key]);
    });
    this.removeFiles(files);
  }

  // ---- job reservations ----

  /** Reserves `bytes` of disk for `job` while it runs: evicts, waits, or fails naming the sizes. */
  async reserve(job: string, bytes: number): Promise<void> {
    const until = Date.now() + (this.opts.reserveWaitMs ?? 600_000);
    for (let round = 0; ; round++) {
      const answer = transaction(this.db, () => {
        const room = planRoom(this.space(), { bytes, as: 'reservation' });
        if (!room.ok) return room;
        const gone = this.evict(room.evict);
        this.db.prepare('INSERT OR REPLACE INTO reservations(holder, job, bytes) VALUES (?, ?, ?)').run(this.holder, job, bytes);
        return { ok: true as const, gone };
      });
      if (answer.ok) return this.removeFiles(answer.gone);
      if (answer.never) throw new ResourceError(`${answer.why} on the node's cache file system (${this.dir})`, { resource: 'disk' });
      if (Date.now() > until)
        throw new ResourceError(
          `${answer.why}; waited ${Math.round((this.opts.reserveWaitMs ?? 600_000) / 1000)}s for other jobs on the node to finish`,
          { resource: 'disk' },
        );
      if (round === 0) this.reapDead();
      await sleep(Math.min(2000, 100 * 2 ** Math.min(round, 5)));
    }
  }

  /** Ends `job`'s use of the cache: its reservation and references go. */
  release(job: string): void {
    transaction(this.db, () => {
      this.db.prepare('DELETE FROM refs WHERE holder = ? AND job = ?').run(this.holder, job);
      this.db.prepare('DELETE FROM reservations WHERE holder = ? AND job = ?').run(this.holder, job);
    });
  }

  // ---- once per node ----

  /**
   * Runs `produce(dir)` once per node for `key` while concurrent callers wait, and gives every
   * caller the directory. A producer that throws or dies frees the claim: the next caller runs
   * it again in an emptied directory.
   */
  async onceOnNode(key: string, produce: (dir: string) => Promise<void>): Promise<string> {
    const dir = path.join(this.dir, 'once', onceName(key));
    for (let round = 0; ; round++) {
      const step = transaction(this.db, () => this.onceStep(key, dir));
      if (step.kind === 'done') return dir;
      if (step.kind === 'wait') {
        await this.waitFor(step.owner, round);
        continue;
      }
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      try {
        await produce(dir);
      } catch (e) {
        transaction(this.db, () => this.db.prepare('DELETE FROM once WHERE key = ? AND owner = ?').run(key, this.holder));
        throw e;
      }
      transaction(this.db, () => this.db.prepare("UPDATE once SET state = 'done' WHERE key = ? AND owner = ?").run(key, this.holder));
      return dir;
    }
  }

  // ---- inspection (tests, status) ----

  /** The entries, most recently used last. */
  entries(): Array<EntryView & { file: string }> {
    const rows = this.db
      .prepare('SELECT key, size, state, owner, file, last_used FROM entries ORDER BY last_used')
      .all() as unknown as EntryRow[];
    return rows.map((r) => ({
      key: r.key,
      size: r.size,
      state: r.state,
      lastUsed: r.last_used,
      refs: this.refCount(r.key),
      file: this.filePath(r.file),
    }));
  }

  /** The size of a complete entry, if the cache has one (saves asking the job store on a hit). */
  cachedSize(key: string): number | undefined {
    const e = this.entry(key);
    return e?.state === 'ready' ? e.size : undefined;
  }

  capacity(): number {
    return this.meta('capacity') ?? 0;
  }

  // ---- inside transactions ----

  private obtainStep(args: { key: string; size: number; job: string }): ObtainStep {
    let e = this.entry(args.key);
    if (e?.state === 'ready' && !this.intact(e)) {
      this.evict([e.key]);
      e = undefined;
    }
    if (e?.state === 'ready') {
      this.db.prepare('INSERT OR IGNORE INTO refs(key, holder, job) VALUES (?, ?, ?)').run(args.key, this.holder, args.job);
      this.db.prepare('UPDATE entries SET last_used = ? WHERE key = ?').run(this.tick(), args.key);
      return { kind: 'hit', file: e.file };
    }
    if (e) return { kind: 'wait', owner: e.owner ?? '' };
    const room = planRoom(this.space(), { bytes: args.size, as: 'entry' });
    if (!room.ok) return { kind: 'full', never: room.never };
    const evicted = this.evict(room.evict);
    const file = `${args.key}.${randomBytes(4).toString('hex')}`;
    this.db
      .prepare("INSERT INTO entries(key, size, state, owner, file, last_used) VALUES (?, ?, 'filling', ?, ?, ?)")
      .run(args.key, args.size, this.holder, file, this.tick());
    return { kind: 'fill', file, evicted };
  }

  private onceStep(key: string, dir: string): { kind: 'done' } | { kind: 'wait'; owner: string } | { kind: 'claim' } {
    const row = this.db.prepare('SELECT state, owner FROM once WHERE key = ?').get(key) as { state: string; owner: string } | undefined;
    if (row?.state === 'done' && existsSync(dir)) return { kind: 'done' };
    if (row?.state === 'running') return { kind: 'wait', owner: row.owner };
    this.db.prepare("INSERT OR REPLACE INTO once(key, state, owner, dir) VALUES (?, 'running', ?, ?)").run(key, this.holder, dir);
    return { kind: 'claim' };
  }

  /** Deletes entries; returns their files, to be removed once the transaction has committed. */
  private evict(keys: readonly string[]): string[] {
    const files: string[] = [];
    for (const key of keys) {
      const e = this.entry(key);
      if (!e) continue;
      files.push(this.filePath(e.file), this.partPath(e.file));
      this.db.prepare('DELETE FROM entries WHERE key = ?').run(key);
      this.db.prepare('DELETE FROM refs WHERE key = ?').run(key);
    }
    return files;
  }

  private space() {
    const rows = this.db.prepare('SELECT key, size, state, owner, file, last_used FROM entries').all() as unknown as EntryRow[];
    const refs = new Map(
      (this.db.prepare('SELECT key, COUNT(*) AS n FROM refs GROUP BY key').all() as Array<{ key: string; n: number }>).map((r) => [
        r.key,
        r.n,
      ]),
    );
    const reserved = (this.db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM reservations').get() as { n: number }).n;
    const entries = rows.map((r) => ({ key: r.key, size: r.size, state: r.state, lastUsed: r.last_used, refs: refs.get(r.key) ?? 0 }));
    return { capacity: this.capacity(), cap: this.opts.cap, entries, reserved };
  }

  private entry(key: string): EntryRow | undefined {
    return this.db.prepare('SELECT key, size, state, owner, file, last_used FROM entries WHERE key = ?').get(key) as EntryRow | undefined;
  }

  private refCount(key: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM refs WHERE key = ?').get(key) as { n: number }).n;
  }

  /** A complete entry's file is there with its size (a file changed through a link is dropped). */
  private intact(e: EntryRow): boolean {
    try {
      return statSync(this.filePath(e.file)).size === e.size;
    } catch {
      return false;
    }
  }

  private tick(): number {
    const next = (this.meta('tick') ?? 0) + 1;
    this.setMeta('tick', next);
    return next;
  }

  private meta(name: string): number | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: number } | undefined)?.value;
  }

  private setMeta(name: string, value: number): void {
    this.db.prepare('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run(name, value);
  }

  /** Deletes a holder's rows; returns the files of its unfinished entries. */
  private forgetHolder(id: string): string[] {
    const filling = this.db.prepare("SELECT key FROM entries WHERE state = 'filling' AND owner = ?").all(id) as Array<{ key: string }>;
    const files = this.evict(filling.map((r) => r.key));
    for (const table of ['refs', 'reservations']) this.db.prepare(`DELETE FROM ${table} WHERE holder = ?`).run(id);
    this.db.prepare("DELETE FROM once WHERE state = 'running' AND owner = ?").run(id);
    this.db.prepare('DELETE FROM holders WHERE id = ?').run(id);
    return files;
  }

  // ---- liveness ----

  /** Reaps every dead holder; returns how many others are alive. */
  private reapDead(): number {
    const ids = (this.db.prepare('SELECT id FROM holders WHERE id <> ?').all(this.holder) as Array<{ id: string }>).map((r) => r.id);
    let alive = 0;
    for (const id of ids) {
      if (this.isAlive(id)) alive++;
      else this.reap(id);
    }
    return alive;
  }

  private reap(id: string): void {
    const files = transaction(this.db, () => this.forgetHolder(id));
    this.removeFiles(files);
    rmSync(this.lockFile(id), { force: true });
  }

  /** Whether a holder's process is alive: its lock cannot be taken (liveLock.ts). */
  private isAlive(id: string): boolean {
    return id === this.holder || lockHolder(this.lockFile(id)) === 'alive';
  }

  /** Waits a little for somebody's claim; reaps its holder if that is dead. */
  private async waitFor(owner: string, round: number): Promise<void> {
    const verdict = judgeClaim({ owner }, this.holder, (o) => this.isAlive(o));
    if (verdict === 'takeover') return this.reap(owner);
    await sleep(Math.min(250, 10 * 2 ** Math.min(round, 5)));
  }

  // ---- files ----

  /** Downloads a claimed entry and publishes it; undefined if the claim was lost meanwhile. */
  private async fill(args: {
    key: string;
    size: number;
    job: string;
    file: string;
    fetch: (dest: string) => Promise<void>;
  }): Promise<string | undefined> {
    const part = this.partPath(args.file);
    const final = this.filePath(args.file);
    try {
      await args.fetch(part);
      await settle(part, args.size);
      await rename(part, final);
    } catch (e) {
      transaction(this.db, () =>
        this.db.prepare('DELETE FROM entries WHERE key = ? AND owner = ? AND file = ?').run(args.key, this.holder, args.file),
      );
      this.removeFiles([part, final]);
      throw e;
    }
    const published = transaction(this.db, () => {
      const r = this.db
        .prepare("UPDATE entries SET state = 'ready', owner = NULL WHERE key = ? AND owner = ? AND file = ? AND state = 'filling'")
        .run(args.key, this.holder, args.file);
      if (Number(r.changes) !== 1) return false;
      this.db.prepare('INSERT OR IGNORE INTO refs(key, holder, job) VALUES (?, ?, ?)').run(args.key, this.holder, args.job);
      return true;
    });
    if (!published) {
      this.removeFiles([final]);
      return undefined;
    }
    return final;
  }

  /** Removes files no entry names (only while no other holder is alive). */
  private sweep(): void {
    const named = new Set((this.db.prepare('SELECT file FROM entries').all() as Array<{ file: string }>).map((r) => r.file));
    for (const sub of ['files', 'tmp']) {
      for (const f of readdirSync(path.join(this.dir, sub))) {
        if (!named.has(f.replace(/\.part$/, ''))) rmSync(path.join(this.dir, sub, f), { force: true });
      }
    }
  }

  /** The capacity: free space plus what the cache holds (measured when nobody else uses the cache, or never measured). */
  private measure(): void {
    const fs = statfsSync(this.dir);
    transaction(this.db, () => {
      const cached = (this.db.prepare('SELECT COALESCE(SUM(size), 0) AS n FROM entries').get() as { n: number }).n;
      this.setMeta('capacity', fs.bavail * fs.bsize + cached);
    });
  }

  private removeFiles(files: readonly string[]): void {
    for (const f of files) {
      try {
        unlinkSync(f);
      } catch {
        // already gone
      }
    }
  }

  private filePath(file: string): string {
    return path.join(this.dir, 'files', file);
  }

  private partPath(file: string): string {
    return path.join(this.dir, 'tmp', `${file}.part`);
  }

  private lockFile(id: string): string {
    return path.join(this.dir, 'holders', `${id}.lock`);
  }
}

/** A downloaded file has the expected size, is on disk, and is read-only. */
async function settle(file: string, size: number): Promise<void> {
  const fh = await open(file, 'r');
  try {
    const got = (await fh.stat()).size;
    if (got !== size) throw new TransientError(`downloaded ${got} bytes where the job store has ${size}`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(file, 0o444);
}

/** Places a cache file at `dest`: a hard link (read-only use), or a copy across file systems or on request. */
export async function placeFile(source: string, dest: string, opts: { copy: boolean }): Promise<'link' | 'copy'> {
  const temp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  let how: 'link' | 'copy' = 'copy';
  if (!opts.copy) {
    try {
      await link(source, temp);
      how = 'link';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  if (how === 'copy') {
    await copyFile(source, temp);
    await chmod(temp, 0o644);
  }
  await rename(temp, dest).catch(async (e: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw e;
  });
  return how;
}

/** A directory name for a once-per-node key: readable, and unique by its hash. */
function onceName(key: string): string {
  const readable = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
  return `${readable}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/** Runs a statement that may meet a lock that the busy timeout does not cover (journal mode changes). */
function retryBusy(fn: () => void): void {
  for (let i = 0; ; i++) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || i >= 50) throw e;
      // A short synchronous pause (this runs once, when the cache is opened).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

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
