/**
 * Node 22's built-in SQLite (`node:sqlite`), loaded on first use. Loading it prints an
 * ExperimentalWarning once per process; exactly that warning is filtered, every other warning
 * goes through unchanged.
 */
import { createRequire } from 'node:module';
import type { DatabaseSync } from 'node:sqlite';

let loaded: typeof import('node:sqlite') | undefined;

function isSqliteWarning(warning: string | Error, rest: unknown[]): boolean {
  const first = rest[0];
  const type =
    typeof first === 'string' ? first : typeof first === 'object' && first !== null ? (first as { type?: unknown }).type : undefined;
  const text = typeof warning === 'string' ? warning : warning.message;
  const name = typeof warning === 'string' ? type : warning.name;
  return (name === 'ExperimentalWarning' || type === 'ExperimentalWarning') && /^SQLite is an experimental feature/.test(text);
}

function load(): typeof import('node:sqlite') {
  if (loaded) return loaded;
  const original = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (isSqliteWarning(warning, rest)) return;
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    loaded = createRequire(import.meta.url)('node:sqlite') as typeof import('node:sqlite');
  } finally {
    process.emitWarning = original;
  }
  return loaded;
}

/** Opens (creating) a database file; `timeoutMs` is how long a statement waits for a lock. */
export function openDatabase(file: string, timeoutMs: number): DatabaseSync {
  const db = new (load().DatabaseSync)(file);
  return settingUp(db, () => db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(timeoutMs))}`));
}

/** Runs `setup` on a database just opened; if it throws, the database is closed before the error goes on. */
export function settingUp(db: DatabaseSync, setup: () => void): DatabaseSync {
  try {
    setup();
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Whether an error is SQLite's "database is locked" / "busy". */
export function isBusy(e: unknown): boolean {
  const code = (e as { errcode?: unknown }).errcode;
  return code === 5 || code === 6 || /database is locked|database table is locked|SQLITE_BUSY/i.test(String((e as Error).message));
}

/** Runs `fn` in a write transaction (BEGIN IMMEDIATE): synchronous, so it cannot hold the lock across an await. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const out = fn();
    db.exec('COMMIT');
    return out;
  } catch (e) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw e;
  }
}
