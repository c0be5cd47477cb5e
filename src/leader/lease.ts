/**
 * One leader per job store: the leader holds a lease, the shared file {@link LEASE_FILE}, written
 * only with conditional writes (if-absent, if-version), so that each write makes a new version.
 * Expiry is timed on each process's own monotonic clock; the wall-clock times in the lease are
 * for people (`toil status`) and decide nothing.
 *
 * **Taking it.** No lease: write it if-absent. An unreadable lease, or one whose holder is
 * provably dead (below): write over it at once, if-version. Otherwise a successor watches: it
 * notes, on its own monotonic clock, when it received the version it found, and reads again every
 * few seconds. A new version means the holder (or another successor) is alive: LeaseHeldError. A
 * removed lease is written if-absent. The same version for the holder's whole lease period D
 * (recorded in the lease) on the successor's clock: it takes over, if-version on that version.
 * What it waits for, and how long, goes to the log.
 *
 * **Holding it.** Every D/6 the holder rewrites it, if-version. It may act only while less than
 * D − m has passed, on its own clock, since the *start* of its last write that it saw succeed;
 * {@link Lease.hold} (the fence of `FencedJobStore`) checks this before each change to the store,
 * and the signal it returns aborts requests still in flight at that point. A renewal refused as
 * stale is read back: a lease of ours is an abandoned attempt that landed after all (its version
 * is adopted); anyone else's means it was taken over. The lease is lost (LeaseLostError, once)
 * when taken over, or when D − m passes without a successful renewal; the leader then stops.
 *
 * **Safety, with no wall clock in it.** Assumed: (A1) the conditional writes on the lease are
 * linearizable (S3's If-Match, the file store's hard links, SimpleDB's conditional puts, the claim
 * protocol); (A2) a monotonic clock runs at real time within a factor ρ ≤ 1% (quartz is within
 * 0.01%, NTP slews by at most 0.05%) — it may stop while a machine is suspended, which only makes
 * a successor wait longer, and a holder counts with the faster of CLOCK_MONOTONIC
 * (`performance.now()`) and the boot-time clock (`os.uptime()`, which also counts while
 * suspended); (A3) a request the holder abandons when its validity ends takes effect within the
 * slack g below, or never. Let W be the write whose version V a successor takes over from, sent
 * at real time s. The holder's writes form a chain (each names the version before it), so the
 * last write the holder saw succeed was sent at or before s, and it acts until at most
 * s + (D − m)/(1 − ρ). The successor received V after W took effect, after s, and acts only once
 * its clock advanced D since, at s + D/(1 + ρ) or later; its if-version write succeeds only if V
 * was still current. So they never act at once when m ≥ 2ρD/(1 + ρ): with D = 60 s and m = 5 s
 * up to ρ = 4.3%, and at ρ = 1% with g ≈ 3.8 s to spare for requests in flight.
 *
 * **Numbers.** D = 60 s by default (`--leaseSeconds`); renewals every D/6 = 10 s; each attempt
 * (and each read while watching) bounded to D/12 = 5 s (at least min(1 s, D/6)) and, after a
 * failure, tried again after D/60 = 1 s; m = D/12 = 5 s. So a holder stays valid 55 s after its
 * last successful renewal and rides out some 45 s of stalled requests, with an attempt every
 * 6 s. Why bounded attempts: a small S3 request is answered in tens of milliseconds (AWS advises
 * retrying small GETs and PUTs after 2 s), but the S3 client's own bounds (s3Client.ts: connect
 * 10 s, 120 s without data; s3Retry.ts: 10 tries, pauses up to 5 s) let one call last minutes,
 * more than any lease: 5 s is 2.5 times AWS's retry point and covers a claim-protocol write's
 * 3–4 requests. Why 60 s: 30 s with one unbounded renewal in flight was lost to a single slow
 * request; the price of a longer lease is the wait of a successor that cannot see the holder's
 * lock (below): one lease period.
 *
 * **Liveness.** PIDs and host names prove nothing across containers (everyone's pid 1, pod
 * hosts with the same name). The holder keeps a {@link LiveLock} (a locked file in its temp
 * directory, holding its leader id) for its whole life and names it in the lease. A holder whose
 * lock file is visible here, is the holder's, and is free has ended: its lease is taken at once.
 * From anywhere else (another pod, another machine) only the watch counts.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { sleep } from '../concurrency.js';
import { ConflictError, LeaseHeldError, LeaseLostError, NotFoundError, errorMessage } from '../errors.js';
import { LiveLock, lockHolder } from '../filestore/liveLock.js';
import type { Fence } from '../jobstore/fenced.js';
import { parseStored } from '../jobstore/records.js';
import { abandonedError, withRequestSignal } from '../jobstore/requestSignal.js';
import type { JobStore, WriteCondition } from '../jobstore/types.js';
import type { Logger } from '../log.js';

export const LEASE_FILE = 'leader-lease.json';

/** The default lease period D, in seconds (`--leaseSeconds`). */
export const DEFAULT_LEASE_SECONDS = 60;

const LeaseSchema = z.object({
  leaderId: z.string(),
  host: z.string(),
  pid: z.number(),
  /** The holder's LiveLock file (absent in leases of older versions). */
  lockFile: z.string().optional(),
  workflowId: z.string().optional(),
  /** The holder's lease period D in ms: how long a successor watches (absent in older leases). */
  durationMs: z.number().positive().optional(),
  /** When it was taken, renewed, and would expire, by the holder's wall clock: for people only. */
  acquiredAt: z.number(),
  renewedAt: z.number().optional(),
  expiresAt: z.number(),
});
type LeaseBody = z.infer<typeof LeaseSchema>;

/** The lease as stored; `body` undefined when it cannot be read (it then holds nobody). */
interface Found {
  body: LeaseBody | undefined;
  version: string;
}

async function findLease(store: JobStore): Promise<Found | undefined> {
  const got = await store.readShared(LEASE_FILE);
  if (!got) return undefined;
  try {
    return { body: parseStored(LeaseSchema, got.value, LEASE_FILE), version: got.version };
  } catch {
    return { body: undefined, version: got.version };
  }
}

export async function readLease(store: JobStore): Promise<{ body: LeaseBody; version: string } | undefined> {
  const found = await findLease(store);
  return found?.body ? { body: found.body, version: found.version } : undefined;
}

/**
 * For people (`toil status`, `toil kill`): whether a lease looks held, by the holder's own wall
 * clock and its lock where visible. Nothing the protocol decides rests on it.
 */
export function leaseSeemsLive(body: LeaseBody, now = Date.now()): boolean {
  if (body.expiresAt <= now) return false;
  return !holderIsDead(body);
}

/** How a holder names itself in messages (pid and host say where to look, not whether it lives). */
export function leaseHolder(body: LeaseBody): string {
  return `pid ${body.pid} on ${body.host}`;
}

/** Provably ended: its lock file is visible here, is its own, and is free. */
function holderIsDead(body: LeaseBody): boolean {
  return body.lockFile !== undefined && lockHolder(body.lockFile, body.leaderId) === 'dead';
}

/** The lease period a successor waits for: the holder's own. */
function periodOf(body: LeaseBody): number {
  return body.durationMs ?? Math.max(0, body.expiresAt - (body.renewedAt ?? body.acquiredAt));
}

/** The protocol's times, all fractions of the lease period D (see the header for why). */
export interface LeaseTiming {
  durationMs: number;
  renewEveryMs: number;
  /** The bound on one renewal attempt, or one read while watching. */
  attemptMs: number;
  /** m: the holder acts until D − m after the start of its last successful renewal. */
  marginMs: number;
  retryMs: number;
  /** How often a successor reads the lease it watches. */
  pollMs: number;
  /** How often the holder looks at its clock for the end of its validity. */
  checkMs: number;
}

export function leaseTiming(durationMs: number): LeaseTiming {
  const renewEveryMs = durationMs / 6;
  return {
    durationMs,
    renewEveryMs,
    attemptMs: Math.max(durationMs / 12, Math.min(1000, renewEveryMs)),
    marginMs: durationMs / 12,
    retryMs: Math.min(1000, durationMs / 60),
    pollMs: renewEveryMs / 4,
    checkMs: Math.min(250, durationMs / 24),
  };
}

/** A reading of both of the holder's clocks (ms), to measure elapsed time from. */
interface Mark {
  mono: number;
  boot: number;
}

function mark(): Mark {
  return { mono: performance.now(), boot: os.uptime() * 1000 };
}

/** Time since `m` by whichever clock says more: never less than either (A2). */
function elapsedSince(m: Mark): number {
  const now = mark();
  return Math.max(now.mono - m.mono, now.boot - m.boot);
}

export interface LeaseOptions {
  /** The lease period D in ms (default {@link DEFAULT_LEASE_SECONDS}). */
  durationMs?: number;
  /** Called once when the lease is lost. */
  onLost?: (e: LeaseLostError) => void;
  /** Where the lease says what taking it waits for (info), and which renewals failed (warning). */
  log?: Pick<Logger, 'info' | 'warning'>;
}

/** The holder's LiveLock in its temp directory; none (only the watch counts) where that cannot be written. */
function holdLock(id: string): LiveLock | undefined {
  try {
    return LiveLock.hold(path.join(os.tmpdir(), `toil-leader-${id}.lock`), id);
  } catch {
    return undefined;
  }
}

export class Lease implements Fence {
  private readonly id = randomUUID();
  private readonly t: LeaseTiming;
  private lock: LiveLock | undefined;
  private workflowId: string | undefined;
  private acquiredAt: number | undefined;
  private version: string | undefined;
  /** The start of our last write that we saw succeed: we act until D − m after it. */
  private validFrom: Mark | undefined;
  /** Aborted when the right to act ends (lost or released). */
  private readonly validity = new AbortController();
  private lost: LeaseLostError | undefined;
  private released = false;
  private renewing = false;
  private renewal: Promise<void> | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private lastError: string | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly opts: LeaseOptions = {},
  ) {
    this.t = leaseTiming(opts.durationMs ?? DEFAULT_LEASE_SECONDS * 1000);
  }

  /** The lease, once lost; undefined while held. */
  get lostError(): LeaseLostError | undefined {
    return this.lost;
  }

  /** Takes the lease (watching a holder that may be alive first), or throws LeaseHeldError naming it. */
  async acquire(workflowId?: string): Promise<void> {
    this.workflowId = workflowId;
    this.lock ??= holdLock(this.id);
    try {
      await this.take();
    } catch (e) {
      this.lock?.release();
      this.lock = undefined;
      throw e;
    }
    this.renewing = true;
    this.scheduleRenewal(this.t.renewEveryMs);
    this.checkTimer = setInterval(() => this.checkValid(), this.t.checkMs);
    this.checkTimer.unref();
  }

  /**
   * The fence: a signal that aborts when the right to act ends, if the lease is held with at
   * least one attempt's time left (renewing first if less is left); otherwise LeaseLostError.
   */
  async hold(doing: string): Promise<AbortSignal> {
    if (this.isHeld() && this.remainingMs() < this.t.attemptMs) {
      if (this.renewing) await this.renew();
      if (this.isHeld() && this.remainingMs() < this.t.attemptMs)
        this.lose(this.notRenewed(`too little of it was left to ${doing}`), { takenOver: false });
    }
    if (this.lost) throw new LeaseLostError(`refusing to ${doing}: ${this.lost.message}`, this.lost.info);
    if (!this.isHeld()) {
      throw new LeaseLostError(`refusing to ${doing}: this process does not hold the leader lease on ${this.store.locator}`, {
        takenOver: false,
      });
    }
    return this.validity.signal;
  }

  /** Stops renewing: the right to act then ends D − m after the last renewal. */
  stopRenewing(): void {
    this.renewing = false;
    clearTimeout(this.renewTimer);
  }

  /** Gives the lease up (if still ours, with time to spare). */
  async release(): Promise<void> {
    this.stopRenewing();
    clearInterval(this.checkTimer);
    try {
      if (this.isHeld() && this.remainingMs() >= this.t.attemptMs) {
        await withRequestSignal(this.validity.signal, async () => {
          const cur = await findLease(this.store);
          if (cur?.body?.leaderId === this.id) await this.store.deleteShared(LEASE_FILE);
        }).catch(() => undefined);
      }
    } finally {
      this.released = true;
      this.validity.abort(new LeaseLostError(`the leader lease on ${this.store.locator} was given up`, { takenOver: false }));
      this.lock?.release();
      this.lock = undefined;
    }
  }

  private isHeld(): boolean {
    return this.version !== undefined && !this.lost && !this.released;
  }

  private remainingMs(): number {
    if (!this.validFrom) return 0;
    return this.t.durationMs - this.t.marginMs - elapsedSince(this.validFrom);
  }

  private body(): LeaseBody {
    const now = Date.now();
    return {
      leaderId: this.id,
      host: os.hostname(),
      pid: process.pid,
      ...(this.lock ? { lockFile: this.lock.file } : {}),
      ...(this.workflowId ? { workflowId: this.workflowId } : {}),
      durationMs: this.t.durationMs,
      acquiredAt: this.acquiredAt ?? now,
      renewedAt: now,
      expiresAt: now + this.t.durationMs,
    };
  }

  /** A write of ours succeeded: `version` is current, and we act until D − m after `started`. */
  private held(version: string, started: Mark): void {
    this.version = version;
    this.validFrom = started;
    this.acquiredAt ??= Date.now();
    this.lastError = undefined;
  }

  // ---- taking it -------------------------------------------------------------------------------

  private async take(): Promise<void> {
    const found = await findLease(this.store);
    const seenAt = performance.now();
    if (!found) return this.write({ ifAbsent: true });
    if (found.body === undefined || holderIsDead(found.body)) return this.write({ ifVersion: found.version });
    const outcome = await this.watch({ body: found.body, version: found.version }, seenAt);
    return this.write(outcome === 'gone' ? { ifAbsent: true } : { ifVersion: found.version });
  }

  /** Our conditional write of the lease; refused, somebody else wrote it first. */
  private async write(cond: WriteCondition): Promise<void> {
    const started = mark();
    try {
      this.held(await this.store.writeShared(LEASE_FILE, JSON.stringify(this.body()), cond), started);
    } catch (e) {
      if (e instanceof ConflictError || e instanceof NotFoundError) throw this.heldError(undefined, 'wrote its lease just now');
      throw e;
    }
  }

  /**
   * Watches a lease whose holder may be alive, from `seenAt` (when we received its version) for
   * the holder's lease period on our clock: 'silent' if it stays as it is, 'gone' if removed,
   * 'dead' once its holder is seen to have ended; LeaseHeldError if it is written again.
   */
  private async watch(found: { body: LeaseBody; version: string }, seenAt: number): Promise<'silent' | 'gone' | 'dead'> {
    const period = periodOf(found.body);
    const renewed = new Date(found.body.renewedAt ?? found.body.acquiredAt).toISOString();
    this.opts.log?.info(
      `job store ${this.store.locator} holds the lease of another leader (${leaseHolder(found.body)}, last renewed at ${renewed} by its clock), ` +
        `which cannot be seen to have ended from here: watching it for ${(period / 1000).toFixed(0)}s (its lease period, on this machine's clock); ` +
        `if it is renewed meanwhile that leader is alive and this run stops, otherwise this run takes over`,
    );
    for (;;) {
      const left = period - (performance.now() - seenAt);
      if (left <= 0) break;
      await sleep(Math.min(left, this.t.pollMs));
      let now: Found | undefined;
      try {
        now = await this.bounded(() => findLease(this.store));
      } catch {
        continue; // a read that fails tells nothing: the time still counts from `seenAt`
      }
      if (!now) return 'gone';
      if (now.version !== found.version) throw this.heldError(now.body, 'renewed its lease while this run watched it');
      if (holderIsDead(found.body)) return 'dead';
    }
    this.opts.log?.info(`the lease of ${leaseHolder(found.body)} was not renewed for ${(period / 1000).toFixed(0)}s: taking it over`);
    return 'silent';
  }

  private heldError(body: LeaseBody | undefined, why: string): LeaseHeldError {
    const loc = this.store.locator;
    return new LeaseHeldError(
      `job store ${loc} is in use by another leader (${body ? leaseHolder(body) : 'unknown'}): it ${why}; ` +
        `wait for it to finish, or stop it with 'toil kill ${loc}'`,
      body ? { pid: body.pid, host: body.host } : {},
    );
  }

  /** Runs store calls for the lease within one attempt's time: their requests are abandoned after it. */
  private bounded<T>(fn: () => Promise<T>): Promise<T> {
    const signal = AbortSignal.timeout(this.t.attemptMs);
    return new Promise<T>((resolve, reject) => {
      // Also for stores whose calls do not look at the signal (the file job store).
      const onAbort = () => reject(abandonedError(`a request for the lease on ${this.store.locator}`, signal));
      signal.addEventListener('abort', onAbort, { once: true });
      withRequestSignal(signal, fn)
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  // ---- holding it ------------------------------------------------------------------------------

  private scheduleRenewal(delayMs: number): void {
    clearTimeout(this.renewTimer);
    if (!this.renewing || !this.isHeld()) return;
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(0, delayMs));
    this.renewTimer.unref();
  }

  /** One renewal at a time: a caller while one is under way waits for it. */
  private renew(): Promise<void> {
    this.renewal ??= this.renewOnce().finally(() => (this.renewal = undefined));
    return this.renewal;
  }

  private async renewOnce(): Promise<void> {
    if (!this.isHeld()) return;
    const started = mark();
    try {
      const version = await this.bounded(() =>
        this.store.writeShared(LEASE_FILE, JSON.stringify(this.body()), { ifVersion: this.version! }),
      );
      if (!this.isHeld()) return;
      this.held(version, started);
      this.scheduleRenewal(this.t.renewEveryMs - elapsedSince(started));
    } catch (e) {
      if (!this.isHeld()) return;
      if (e instanceof ConflictError || e instanceof NotFoundError) return this.reconcile();
      this.lastError = errorMessage(e);
      this.opts.log?.warning(
        `could not renew the leader lease on ${this.store.locator}: ${this.lastError}; ` +
          `trying again in ${(this.t.retryMs / 1000).toFixed(1)}s (${(this.remainingMs() / 1000).toFixed(1)}s of it left)`,
      );
      this.scheduleRenewal(this.t.retryMs);
    }
  }

  /** After a renewal refused as stale: ours after all (an abandoned attempt landed), or taken over. */
  private async reconcile(): Promise<void> {
    let cur: Found | undefined;
    try {
      cur = await this.bounded(() => findLease(this.store));
    } catch (e) {
      this.lastError = errorMessage(e);
      return this.scheduleRenewal(this.t.retryMs);
    }
    if (cur?.body?.leaderId === this.id) {
      this.version = cur.version; // the time still counts from the last write we saw succeed
      return this.scheduleRenewal(0);
    }
    if (!cur) return this.lose('its record was removed from the job store', { takenOver: false });
    this.lose(`another leader took it over (${cur.body ? leaseHolder(cur.body) : 'its lease is unreadable'})`, { takenOver: true });
  }

  private checkValid(): void {
    if (!this.isHeld() || this.remainingMs() > 0) return;
    this.lose(this.notRenewed(), { takenOver: false });
  }

  /** Why the lease ran out, for the loss's message. */
  private notRenewed(detail?: string): string {
    const since = (elapsedSince(this.validFrom!) / 1000).toFixed(1);
    const why = [detail, this.lastError].filter((x) => x !== undefined).join('; ');
    return `it could not be renewed for ${since}s (it is valid ${((this.t.durationMs - this.t.marginMs) / 1000).toFixed(1)}s after a renewal)${why ? `: ${why}` : ''}`;
  }

  private lose(why: string, info: { takenOver: boolean }): void {
    if (this.lost) return;
    this.lost = new LeaseLostError(`lost the leader lease on ${this.store.locator}: ${why}; stopping; another leader may be running`, info);
    this.validity.abort(this.lost);
    this.stopRenewing();
    clearInterval(this.checkTimer);
    this.opts.onLost?.(this.lost);
  }
}
