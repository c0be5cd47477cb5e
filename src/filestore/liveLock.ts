/**
 * A process's claim to be alive that other processes on the same machine can check, whatever
 * their PID namespace: a small SQLite file the process creates and keeps exclusively locked for
 * its whole life (node cache holders, the leader's lease).
 *
 * Rules:
 * - The kernel drops the lock when the process ends, SIGKILL included; a busy process (an event
 *   loop blocked by a long computation) keeps it. So a lock that can be taken proves its holder
 *   ended, and one that cannot proves it lives.
 * - File locks hold across PID and mount namespaces of one machine: a container's pid 1 and a
 *   host process see the same lock on the same file. PIDs and host names prove nothing there.
 * - Only the holder creates its file, under a name nobody else uses, and writes its token into
 *   it before taking the lock: a checker that finds the file at the path it was told, holding
 *   the token it expects, is looking at the holder's own file (not a namesake in another mount
 *   namespace or on another machine). Anything else proves nothing.
 */
import { existsSync, rmSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { isBusy, openDatabase, settingUp } from './sqlite.js';

export class LiveLock {
  private constructor(
    readonly file: string,
    private readonly db: DatabaseSync,
  ) {}

  /** Creates `file` holding `token` and locks it until {@link release} or the end of the process. */
  static hold(file: string, token = ''): LiveLock {
    try {
      const db = openDatabase(file, 0);
      settingUp(db, () => {
        db.exec('CREATE TABLE IF NOT EXISTS holder(token TEXT)');
        db.exec('DELETE FROM holder');
        db.prepare('INSERT INTO holder(token) VALUES (?)').run(token);
        db.exec('BEGIN EXCLUSIVE');
      });
      return new LiveLock(file, db);
    } catch (e) {
      rmSync(file, { force: true });
      throw e;
    }
  }

  /** Gives the claim up and removes the file. */
  release(): void {
    this.db.close();
    rmSync(this.file, { force: true });
  }
}

/**
 * What the lock file at `file` says of its holder: `alive` (locked), `dead` (its lock is free,
 * and it holds `token` when one is given), `absent` (no such file) or `unknown` (another's
 * file, or one this process may not open: that proves nothing either way).
 */
export function lockHolder(file: string, token?: string): 'alive' | 'dead' | 'absent' | 'unknown' {
  if (!existsSync(file)) return 'absent';
  let probe: DatabaseSync | undefined;
  try {
    probe = openDatabase(file, 0);
    probe.exec('BEGIN EXCLUSIVE');
    try {
      if (token === undefined) return 'dead';
      const row = probe.prepare('SELECT token FROM holder').get() as { token?: unknown } | undefined;
      return row?.token === token ? 'dead' : 'unknown';
    } finally {
      probe.exec('ROLLBACK');
    }
  } catch (e) {
    return isBusy(e) ? 'alive' : 'unknown';
  } finally {
    probe?.close();
  }
}
