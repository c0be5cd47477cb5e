/**
 * The node cache's database (`cache.db` in the cache directory): its schema, the shape of its
 * rows, and the statements the cache's parts share. The protocol they serve is stated at the
 * top of `nodeCache.ts`: every change is one short transaction ({@link CacheDb.tx}) of
 * synchronous statements, never held across an await.
 *
 * Tables: `meta` (capacity, the use counter), `holders` (live processes, liveness by their
 * LiveLock), `entries` (cached files: `filling` while claimed by a holder, then `ready`),
 * `refs` (running jobs that hold an entry), `reservations` (running jobs' disk), `dirs` (the
 * jobs' own directories, relative to the cache directory's parent, removed with a dead
 * holder), `once` (once-per-node producers, `onceOnNode.ts`).
 *
 * Changes to the schema only add tables and nullable columns: workers of an older version on
 * the same node keep working beside newer ones.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Sealed } from './cacheFiles.js';
import type { EntryView, SpaceTotals, SpaceView } from './cacheRules.js';
import { isBusy, openDatabase, settingUp, transaction } from './sqlite.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holders(id TEXT PRIMARY KEY, started INTEGER NOT NULL, label TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries(key TEXT PRIMARY KEY, size INTEGER NOT NULL, state TEXT NOT NULL, owner TEXT, file TEXT NOT NULL, last_used INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refs(key TEXT NOT NULL, holder TEXT NOT NULL, job TEXT NOT NULL, PRIMARY KEY(key, holder, job));
CREATE TABLE IF NOT EXISTS reservations(holder TEXT NOT NULL, job TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY(holder, job));
CREATE TABLE IF NOT EXISTS once(key TEXT PRIMARY KEY, state TEXT NOT NULL, owner TEXT NOT NULL, dir TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dirs(path TEXT PRIMARY KEY, holder TEXT NOT NULL, job TEXT NOT NULL);
`;

/** Columns added since the first version: [table, column, type] (nullable: older workers leave them out). */
const ADDED_COLUMNS: ReadonlyArray<readonly [string, string, string]> = [
  ['entries', 'digest', 'TEXT'],
  ['entries', 'mtime', 'TEXT'],
  ['once', 'manifest', 'TEXT'],
];

export interface EntryRow {
  key: string;
  size: number;
  state: 'filling' | 'ready';
  owner: string | null;
  /** The entry's file name in `files/` (its key and a nonce). */
  file: string;
  last_used: number;
  /** The sha256 of its bytes (hex), once downloaded; null in entries of older versions. */
  digest: string | null;
  /** Its file's modification time (ns) when last checked; null when not yet checked. */
  mtime: string | null;
}

const ENTRY_COLUMNS = 'key, size, state, owner, file, last_used, digest, mtime';

export class CacheDb {
  /** Prepared statements by their text: preparing one costs more than running it, and every job start runs a few. */
  private readonly statements = new Map<string, StatementSync>();

  private constructor(private readonly db: DatabaseSync) {}

  /** The statement `text`, prepared once for this connection. */
  private sql(text: string): StatementSync {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** Opens (creating) `file` in WAL mode with the schema; a database that fails to set up is closed. */
  static open(file: string): CacheDb {
    const db = openDatabase(file, 30_000);
    settingUp(db, () => {
      retryBusy(() => db.exec('PRAGMA journal_mode = WAL'));
      db.exec('PRAGMA synchronous = NORMAL');
      retryBusy(() => db.exec(SCHEMA));
      transaction(db, () => addColumns(db));
    });
    return new CacheDb(db);
  }

  close(): void {
    this.db.close();
  }

  /** Runs `fn` as one write transaction. */
  tx<T>(fn: () => T): T {
    return transaction(this.db, fn);
  }

  // ---- holders ----

  addHolder(id: string, label: string): void {
    this.sql('INSERT INTO holders(id, started, label) VALUES (?, ?, ?)').run(id, Date.now(), label);
  }

  /** The holders other than `me`. */
  otherHolders(me: string): string[] {
    return (this.sql('SELECT id FROM holders WHERE id <> ?').all(me) as Array<{ id: string }>).map((r) => r.id);
  }

  /**
   * Deletes a holder's rows; returns the files of its unfinished entries and its jobs'
   * directories. An entry it had downloaded completely (its digest recorded) but not yet
   * published is kept as complete, to be checked against its digest before it is served.
   */
  forgetHolder(id: string): { files: string[]; dirs: string[] } {
    this.sql(
      "UPDATE entries SET state = 'ready', owner = NULL, mtime = NULL WHERE state = 'filling' AND owner = ? AND digest IS NOT NULL",
    ).run(id);
    const filling = this.sql("SELECT key FROM entries WHERE state = 'filling' AND owner = ?").all(id) as Array<{ key: string }>;
    const files = this.evict(filling.map((r) => r.key));
    const dirs = (this.sql('SELECT path FROM dirs WHERE holder = ?').all(id) as Array<{ path: string }>).map((r) => r.path);
    for (const table of ['refs', 'reservations', 'dirs']) this.sql(`DELETE FROM ${table} WHERE holder = ?`).run(id);
    this.sql("DELETE FROM once WHERE state = 'running' AND owner = ?").run(id);
    this.sql('DELETE FROM holders WHERE id = ?').run(id);
    return { files, dirs };
  }

  // ---- the jobs' directories ----

  /** `job` of `holder` is about to make the directory `rel` (relative to the cache directory's parent). */
  trackDir(rel: string, holder: string, job: string): void {
    this.sql('INSERT OR REPLACE INTO dirs(path, holder, job) VALUES (?, ?, ?)').run(rel, holder, job);
  }

  untrackDir(rel: string): void {
    this.sql('DELETE FROM dirs WHERE path = ?').run(rel);
  }

  /** The directories of jobs with a disk reservation: what they hold is counted against it. */
  reservedDirs(): string[] {
    return (
      this.sql('SELECT d.path FROM dirs d JOIN reservations r ON r.holder = d.holder AND r.job = d.job').all() as Array<{
        path: string;
      }>
    ).map((r) => r.path);
  }

  // ---- entries ----

  entry(key: string): EntryRow | undefined {
    return this.sql(`SELECT ${ENTRY_COLUMNS} FROM entries WHERE key = ?`).get(key) as EntryRow | undefined;
  }

  /** Every entry, most recently used last. */
  entryRows(): EntryRow[] {
    return this.sql(`SELECT ${ENTRY_COLUMNS} FROM entries ORDER BY last_used`).all() as unknown as EntryRow[];
  }

  /** Every entry's file name. */
  entryFiles(): Set<string> {
    return new Set((this.sql('SELECT file FROM entries').all() as Array<{ file: string }>).map((r) => r.file));
  }

  refCount(key: string): number {
    return (this.sql('SELECT COUNT(*) AS n FROM refs WHERE key = ?').get(key) as { n: number }).n;
  }

  /** `job` of `holder` holds the entry, which becomes the most recently used. */
  hold(key: string, holder: string, job: string): void {
    this.sql('INSERT OR IGNORE INTO refs(key, holder, job) VALUES (?, ?, ?)').run(key, holder, job);
    this.sql('UPDATE entries SET last_used = ? WHERE key = ?').run(this.tick(), key);
  }

  /** A new entry, the most recently used: `filling` (claimed by `owner`), or `ready` with its digest and time. */
  insertEntry(e: { key: string; size: number; file: string } & ({ owner: string } | Sealed)): void {
    const sealed = 'digest' in e ? e : undefined;
    this.sql('INSERT INTO entries(key, size, state, owner, file, last_used, digest, mtime) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
      e.key,
      e.size,
      sealed ? 'ready' : 'filling',
      'owner' in e ? e.owner : null,
      e.file,
      this.tick(),
      sealed?.digest ?? null,
      sealed?.mtime ?? null,
    );
  }

  /** Records the digest of `owner`'s complete download (before its file is renamed into place); false if the claim is lost. */
  recordDigest(key: string, owner: string, file: string, digest: string): boolean {
    const r = this.sql("UPDATE entries SET digest = ? WHERE key = ? AND owner = ? AND file = ? AND state = 'filling'").run(
      digest,
      key,
      owner,
      file,
    );
    return Number(r.changes) === 1;
  }

  /** Marks `owner`'s filling entry ready; false if the claim is no longer its own. */
  publish(key: string, owner: string, file: string, mtime: string): boolean {
    const r = this.sql(
      "UPDATE entries SET state = 'ready', owner = NULL, mtime = ? WHERE key = ? AND owner = ? AND file = ? AND state = 'filling'",
    ).run(mtime, key, owner, file);
    return Number(r.changes) === 1;
  }

  /** A complete entry's file was read and matches its digest: its time is recorded (the next reader only stats it). */
  verified(key: string, file: string, mtime: string): void {
    this.sql("UPDATE entries SET mtime = ? WHERE key = ? AND file = ? AND state = 'ready'").run(mtime, key, file);
  }

  /** Drops the entry `key` if its file is still `file`; returns its file names to remove. */
  drop(key: string, file: string): string[] {
    return this.entry(key)?.file === file ? this.evict([key]) : [];
  }

  /** Drops `owner`'s claim on an entry (its download failed). */
  dropClaim(key: string, owner: string, file: string): void {
    this.sql('DELETE FROM entries WHERE key = ? AND owner = ? AND file = ?').run(key, owner, file);
  }

  /** Deletes entries; returns their file names, whose files go once the transaction has committed. */
  evict(keys: readonly string[]): string[] {
    const files: string[] = [];
    for (const key of keys) {
      const e = this.entry(key);
      if (!e) continue;
      files.push(e.file);
      this.sql('DELETE FROM entries WHERE key = ?').run(key);
      this.sql('DELETE FROM refs WHERE key = ?').run(key);
    }
    return files;
  }

  /** The sums of {@link space}, without reading the entries. */
  totals(cap: number | undefined): SpaceTotals {
    const cached = (this.sql('SELECT COALESCE(SUM(size), 0) AS n FROM entries').get() as { n: number }).n;
    const reserved = (this.sql('SELECT COALESCE(SUM(bytes), 0) AS n FROM reservations').get() as { n: number }).n;
    return { capacity: this.meta('capacity') ?? 0, cap, cached, reserved };
  }

  /** What the rules of `cacheRules.ts` look at: the capacity, the entries with their holds, the reservations. */
  space(cap: number | undefined): SpaceView {
    const refs = new Map(
      (this.sql('SELECT key, COUNT(*) AS n FROM refs GROUP BY key').all() as Array<{ key: string; n: number }>).map((r) => [r.key, r.n]),
    );
    const reserved = (this.sql('SELECT COALESCE(SUM(bytes), 0) AS n FROM reservations').get() as { n: number }).n;
    const entries = this.entryRows().map((r) => entryView(r, refs.get(r.key) ?? 0));
    return { capacity: this.meta('capacity') ?? 0, cap, entries, reserved };
  }

  // ---- job reservations ----

  reserve(holder: string, job: string, bytes: number): void {
    this.sql('INSERT OR REPLACE INTO reservations(holder, job, bytes) VALUES (?, ?, ?)').run(holder, job, bytes);
  }

  /** Ends a job's holds and reservation. */
  release(holder: string, job: string): void {
    this.sql('DELETE FROM refs WHERE holder = ? AND job = ?').run(holder, job);
    this.sql('DELETE FROM reservations WHERE holder = ? AND job = ?').run(holder, job);
  }

  // ---- once per node ----

  onceRow(key: string): { state: 'running' | 'done'; owner: string; manifest: string | null } | undefined {
    return this.sql('SELECT state, owner, manifest FROM once WHERE key = ?').get(key) as
      { state: 'running' | 'done'; owner: string; manifest: string | null } | undefined;
  }

  /** `owner` runs the producer of `key`. */
  claimOnce(key: string, owner: string, dir: string): void {
    this.sql("INSERT OR REPLACE INTO once(key, state, owner, dir) VALUES (?, 'running', ?, ?)").run(key, owner, dir);
  }

  /** `owner` runs the producer of a done key again (what it made was changed); false if somebody else does. */
  reclaimOnce(key: string, owner: string, manifest: string): boolean {
    const r = this.sql(
      "UPDATE once SET state = 'running', owner = ?, manifest = NULL WHERE key = ? AND state = 'done' AND manifest = ?",
    ).run(owner, key, manifest);
    return Number(r.changes) === 1;
  }

  /** `owner`'s producer of `key` ended: done (with what it made, for a shared key), or failed (its claim goes). */
  endOnce(key: string, owner: string, end: { done: true; manifest: string | null } | { done: false }): void {
    if (end.done) this.sql("UPDATE once SET state = 'done', manifest = ? WHERE key = ? AND owner = ?").run(end.manifest, key, owner);
    else this.sql('DELETE FROM once WHERE key = ? AND owner = ?').run(key, owner);
  }

  // ---- meta ----

  /** The next value of the use counter (orders entries by last use without a clock). */
  tick(): number {
    const next = (this.meta('tick') ?? 0) + 1;
    this.setMeta('tick', next);
    return next;
  }

  meta(name: string): number | undefined {
    return (this.sql('SELECT value FROM meta WHERE name = ?').get(name) as { value: number } | undefined)?.value;
  }

  setMeta(name: string, value: number): void {
    this.sql('INSERT OR REPLACE INTO meta(name, value) VALUES (?, ?)').run(name, value);
  }
}

/** Adds the columns that a database made by an older version lacks. */
function addColumns(db: DatabaseSync): void {
  for (const [table, column, type] of ADDED_COLUMNS) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === column)) db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
  }
}

export function entryView(r: EntryRow, refs: number): EntryView {
  return { key: r.key, size: r.size, state: r.state, lastUsed: r.last_used, refs };
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
