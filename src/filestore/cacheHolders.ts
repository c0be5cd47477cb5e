/**
 * Holders of the node cache and their liveness. A process using the cache is a holder with a
 * random id: it creates `holders/<id>.lock` and keeps a LiveLock on it for its whole life
 * (`liveLock.ts`) before registering in `cache.db`. Another process judges it alive while that
 * lock cannot be taken; the kernel drops the lock when the process dies (SIGKILL included),
 * across PID and mount namespaces, so a dead holder is found at once and a busy one is never
 * taken for dead. A dead holder is reaped: its rows go (claims, references, reservations) and
 * so do its unfinished files, its jobs' directories and its lock file.
 */
import { rmSync } from 'node:fs';
import { sleep } from '../concurrency.js';
import type { CacheDb } from './cacheDb.js';
import { removeFiles, removeTree, type CachePaths } from './cacheFiles.js';
import { judgeClaim } from './cacheRules.js';
import { lockHolder } from './liveLock.js';

export class CacheHolders {
  constructor(
    private readonly db: CacheDb,
    private readonly paths: CachePaths,
    /** This process's holder id. */
    readonly me: string,
  ) {}

  /**
   * Whether a holder's process may be alive: only a lock file that is gone (a holder makes it
   * before it registers, and it goes only after its rows) or whose lock is free proves it dead.
   * One this process cannot open (another user's, EACCES) proves nothing: its holder is waited for.
   */
  isAlive(id: string): boolean {
    return this.liveness(id) !== 'dead';
  }

  /** `alive`, `dead`, or `unknown` when its lock file cannot be opened (then it is taken for alive). */
  liveness(id: string): 'alive' | 'dead' | 'unknown' {
    if (id === this.me) return 'alive';
    const verdict = lockHolder(this.paths.lock(id));
    return verdict === 'absent' ? 'dead' : verdict;
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

  /**
   * Deletes a holder's rows, its unfinished files and its jobs' directories (its own, when it
   * closes; a dead one's otherwise: what a killed worker left on the node).
   */
  reap(id: string): void {
    const { files, dirs } = this.db.tx(() => this.db.forgetHolder(id));
    removeFiles(this.paths.entryFiles(files));
    for (const rel of dirs) removeTree(this.paths.jobDir(rel));
    if (id === this.me) return;
    try {
      rmSync(this.paths.lock(id), { force: true });
    } catch {
      // A directory this user may not write: the next holder that may, removes it.
    }
  }

  /** Waiting for other holders' claims (see {@link ClaimWait}). */
  claimWait(unjudgedWaitMs: number): ClaimWait {
    return new ClaimWait(this, unjudgedWaitMs);
  }
}

/**
 * One caller's wait for claims held by others (a download, a producer): a little at a time,
 * reaping a dead holder at once. A live holder is waited for as long as it works; one whose
 * liveness cannot be judged (its lock file cannot be opened) only for `unjudgedWaitMs`, after
 * which the caller gives up (a dead holder of another user would otherwise be waited for
 * forever).
 */
export class ClaimWait {
  private round = 0;
  private unjudgedSince: number | undefined;

  constructor(
    private readonly holders: CacheHolders,
    private readonly unjudgedWaitMs: number,
  ) {}

  /** Waits once for `owner`'s claim: `again` (look again), or `give-up`. */
  async wait(owner: string): Promise<'again' | 'give-up'> {
    const liveness = this.holders.liveness(owner);
    if (judgeClaim({ owner }, this.holders.me, () => liveness !== 'dead') === 'takeover') {
      this.holders.reap(owner);
      return 'again';
    }
    if (liveness === 'unknown') {
      this.unjudgedSince ??= Date.now();
      if (Date.now() - this.unjudgedSince > this.unjudgedWaitMs) return 'give-up';
    } else this.unjudgedSince = undefined;
    await sleep(Math.min(250, 10 * 2 ** Math.min(this.round++, 5)));
    return 'again';
  }
}
