/**
 * Holders of the node cache and their liveness. A process using the cache is a holder with a
 * random id: it creates `holders/<id>.lock` and keeps a LiveLock on it for its whole life
 * (`liveLock.ts`) before registering in `cache.db`. Another process judges it alive while that
 * lock cannot be taken; the kernel drops the lock when the process dies (SIGKILL included),
 * across PID and mount namespaces, so a dead holder is found at once and a busy one is never
 * taken for dead. A dead holder is reaped: its rows go (claims, references, reservations) and
 * so do its unfinished files and its lock file.
 */
import { rmSync } from 'node:fs';
import { sleep } from '../concurrency.js';
import type { CacheDb } from './cacheDb.js';
import { removeFiles, type CachePaths } from './cacheFiles.js';
import { judgeClaim } from './cacheRules.js';
import { lockHolder } from './liveLock.js';

export class CacheHolders {
  constructor(
    private readonly db: CacheDb,
    private readonly paths: CachePaths,
    /** This process's holder id. */
    readonly me: string,
  ) {}

  /** Whether a holder's process is alive: its lock cannot be taken. */
  isAlive(id: string): boolean {
    return id === this.me || lockHolder(this.paths.lock(id)) === 'alive';
  }

  /** Reaps every dead holder; returns how many others are alive. */
  reapDead(): number {
    let alive = 0;
    for (const id of this.db.otherHolders(this.me)) {
      if (this.isAlive(id)) alive++;
      else this.reap(id);
    }
    return alive;
  }

  /** Deletes a holder's rows and its unfinished files (its own, when it closes; a dead one's otherwise). */
  reap(id: string): void {
    const files = this.db.tx(() => this.db.forgetHolder(id));
    removeFiles(this.paths.entryFiles(files));
    if (id !== this.me) rmSync(this.paths.lock(id), { force: true });
  }

  /** Waits a little for somebody's claim; reaps its holder if that is dead. */
  async waitFor(owner: string, round: number): Promise<void> {
    const verdict = judgeClaim({ owner }, this.me, (o) => this.isAlive(o));
    if (verdict === 'takeover') return this.reap(owner);
    await sleep(Math.min(250, 10 * 2 ** Math.min(round, 5)));
  }
}
