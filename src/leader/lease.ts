/**
 * One leader per job store: the leader holds a lease, a shared file written with
 * compare-and-swap, and renews it. Protocol:
 *
 * - **Taking it.** A leader writes the lease when there is none (if-absent) or when the one
 *   there holds nobody (if-version): it has expired, or its holder is provably dead. Otherwise
 *   it is refused (LeaseHeldError) naming the holder.
 * - **Renewing it.** Every ttl/3 the holder rewrites it (if-version) with a new expiry. The
 *   holder may act only until the expiry of its last *successful* write: at that time minus a
 *   margin (ttl/6, at most 5 s) without a newer one — the job store does not answer — or as soon
 *   as a renewal finds somebody else's write, the lease is lost (LeaseLostError, once): the
 *   leader stops issuing work and exits. A successor can take the lease only after the expiry,
 *   so the two never act at once (as long as their clocks agree within the margin).
 * - **Liveness.** PIDs and host names prove nothing across containers (everyone's pid 1, pod
 *   hosts with the same name). The holder keeps a {@link LiveLock} (a locked file in its temp
 *   directory, holding its leader id) for its whole life and names it in the lease. A lease
 *   that has not expired holds its leader unless that file is visible here, is the holder's,
 *   and its lock is free: then the holder has ended and the lease is taken over at once. From
 *   anywhere else (another pod, another machine) only the expiry counts.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConflictError, LeaseHeldError, LeaseLostError, errorMessage } from '../errors.js';
import { LiveLock, lockHolder } from '../filestore/liveLock.js';
import { parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';

export const LEASE_FILE = 'leader-lease.json';

const LeaseSchema = z.object({
  leaderId: z.string(),
  host: z.string(),
  pid: z.number(),
  /** The holder's LiveLock file (absent in leases of older versions: only the expiry counts). */
  lockFile: z.string().optional(),
  workflowId: z.string().optional(),
  acquiredAt: z.number(),
  expiresAt: z.number(),
});
type LeaseBody = z.infer<typeof LeaseSchema>;

export async function readLease(store: JobStore): Promise<{ body: LeaseBody; version: string } | undefined> {
  const got = await store.readShared(LEASE_FILE);
  if (!got) return undefined;
  // a lease that cannot be read holds nobody: the next leader writes a good one over it
  try {
    return { body: parseStored(LeaseSchema, got.value, LEASE_FILE), version: got.version };
  } catch {
    return undefined;
  }
}

/** Whether a lease is held by a live leader right now: not expired, and its holder not provably dead. */
export function leaseIsLive(body: LeaseBody, now = Date.now()): boolean {
  if (body.expiresAt <= now) return false;
  return body.lockFile === undefined || lockHolder(body.lockFile, body.leaderId) !== 'dead';
}

/** How a holder names itself in messages (pid and host say where to look, not whether it lives). */
export function leaseHolder(body: LeaseBody): string {
  return `pid ${body.pid} on ${body.host}`;
}

export interface LeaseOptions {
  ttlMs?: number;
  /** Called once when the lease is lost. */
  onLost?: (e: LeaseLostError) => void;
}

/** The holder's LiveLock in its temp directory; none (only the expiry counts) where that cannot be written. */
function holdLock(id: string): LiveLock | undefined {
  try {
    return LiveLock.hold(path.join(os.tmpdir(), `toil-leader-${id}.lock`), id);
  } catch {
    return undefined;
  }
}

export class Lease {
  private version: string | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private fenceTimer: NodeJS.Timeout | undefined;
  private readonly id = randomUUID();
  private readonly ttlMs: number;
  private lock: LiveLock | undefined;
  private lost: LeaseLostError | undefined;
  /** The expiry of our last successful write: we may act until shortly before it. */
  private validUntil = 0;
  private renewing = false;
  private lastError: string | undefined;
  private workflowId: string | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly opts: LeaseOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 30_000;
  }

  /** The lease, once lost; undefined while held. */
  get lostError(): LeaseLostError | undefined {
    return this.lost;
  }

  private body(): LeaseBody {
    const now = Date.now();
    return {
      leaderId: this.id,
      host: os.hostname(),
      pid: process.pid,
      ...(this.lock ? { lockFile: this.lock.file } : {}),
      ...(this.workflowId ? { workflowId: this.workflowId } : {}),
      acquiredAt: now,
      expiresAt: now + this.ttlMs,
    };
  }

  private margin(): number {
    return Math.min(5000, this.ttlMs / 6);
  }

  /** Takes the lease, or throws LeaseHeldError naming the holder. */
  async acquire(workflowId?: string): Promise<void> {
    this.workflowId = workflowId;
    this.lock ??= holdLock(this.id);
    try {
      await this.write();
    } catch (e) {
      this.lock?.release();
      this.lock = undefined;
      throw e;
    }
    this.renewTimer = setInterval(() => void this.renew(), Math.max(1000, this.ttlMs / 3));
    this.renewTimer.unref();
    this.fenceTimer = setInterval(() => this.checkValid(), Math.max(100, Math.min(1000, this.ttlMs / 10)));
    this.fenceTimer.unref();
  }

  private async write(): Promise<void> {
    const cur = await readLease(this.store);
    const body = this.body();
    const data = JSON.stringify(body);
    try {
      if (!cur) this.version = await this.store.writeShared(LEASE_FILE, data, { ifAbsent: true });
      else if (!leaseIsLive(cur.body)) this.version = await this.store.writeShared(LEASE_FILE, data, { ifVersion: cur.version });
      else {
        const secs = Math.ceil((cur.body.expiresAt - Date.now()) / 1000);
        throw new LeaseHeldError(
          `job store ${this.store.locator} is in use by another leader (${leaseHolder(cur.body)}); ` +
            `wait for it to finish, stop it with 'toil kill ${this.store.locator}', or retry after its lease expires in ${secs}s`,
          { pid: cur.body.pid, host: cur.body.host },
        );
      }
    } catch (e) {
      if (e instanceof ConflictError) throw new LeaseHeldError(`job store ${this.store.locator} was just taken by another leader`);
      throw e;
    }
    this.validUntil = body.expiresAt;
  }

  private async renew(): Promise<void> {
    if (this.lost || this.version === undefined || this.renewing) return;
    this.renewing = true;
    const body = this.body();
    try {
      const version = await this.store.writeShared(LEASE_FILE, JSON.stringify(body), { ifVersion: this.version });
      if (this.lost) return;
      this.version = version;
      this.validUntil = body.expiresAt;
    } catch (e) {
      if (e instanceof ConflictError) this.lose('another leader took it over');
      // Other errors: try again at the next interval; the fence check ends it in time.
      else this.lastError = errorMessage(e);
    } finally {
      this.renewing = false;
    }
  }

  private checkValid(): void {
    if (this.lost || Date.now() < this.validUntil - this.margin()) return;
    const left = Math.max(0, this.validUntil - Date.now()) / 1000;
    this.lose(`it could not be renewed and expires in ${left.toFixed(1)}s${this.lastError ? ` (${this.lastError})` : ''}`, {
      expired: true,
    });
  }

  private lose(why: string, opts: { expired?: boolean } = {}): void {
    if (this.lost) return;
    this.lost = new LeaseLostError(`lost the leader lease on ${this.store.locator}: ${why}; stopping; another leader may be running`, {
      takenOver: opts.expired !== true,
    });
    this.stop();
    this.opts.onLost?.(this.lost);
  }

  /** Stops renewing (the lease then expires unless released). */
  stop(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    this.renewTimer = this.fenceTimer = undefined;
  }

  /** Gives the lease up (if still ours). */
  async release(): Promise<void> {
    this.stop();
    try {
      if (this.lost || this.version === undefined) return;
      const cur = await readLease(this.store).catch(() => undefined);
      if (cur && cur.body.leaderId === this.id) await this.store.deleteShared(LEASE_FILE).catch(() => undefined);
    } finally {
      this.lock?.release();
      this.lock = undefined;
    }
  }
}
