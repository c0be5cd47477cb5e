/**
 * One leader per job store: the leader holds a lease (a shared file written with
 * compare-and-swap) and renews it. Another leader is refused while the lease is valid. A lease
 * expires if its leader dies; on the same host a dead leader's lease is taken over at once.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { z } from 'zod';
import { ConflictError, LeaseHeldError } from '../errors.js';
import { parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';

export const LEASE_FILE = 'leader-lease.json';

const LeaseSchema = z.object({
  leaderId: z.string(),
  host: z.string(),
  pid: z.number(),
  workflowId: z.string().optional(),
  acquiredAt: z.number(),
  expiresAt: z.number(),
});
type LeaseBody = z.infer<typeof LeaseSchema>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

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

/** Whether a lease is held by a live leader right now. */
export function leaseIsLive(body: LeaseBody, now = Date.now()): boolean {
  if (body.expiresAt <= now) return false;
  if (body.host === os.hostname() && !alive(body.pid)) return false;
  return true;
}

export class Lease {
  private version: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly id = randomUUID();
  private lost = false;

  constructor(
    private readonly store: JobStore,
    private readonly ttlMs = 30_000,
    private readonly onLost: (why: string) => void = () => {},
  ) {}

  private body(workflowId?: string): LeaseBody {
    const now = Date.now();
    return {
      leaderId: this.id,
      host: os.hostname(),
      pid: process.pid,
      ...(workflowId ? { workflowId } : {}),
      acquiredAt: now,
      expiresAt: now + this.ttlMs,
    };
  }

  /** Takes the lease, or throws LeaseHeldError naming the holder. */
  async acquire(workflowId?: string): Promise<void> {
    const cur = await readLease(this.store);
    const data = JSON.stringify(this.body(workflowId));
    try {
      if (!cur) this.version = await this.store.writeShared(LEASE_FILE, data, { ifAbsent: true });
      else if (!leaseIsLive(cur.body)) this.version = await this.store.writeShared(LEASE_FILE, data, { ifVersion: cur.version });
      else {
        const secs = Math.ceil((cur.body.expiresAt - Date.now()) / 1000);
        throw new LeaseHeldError(
          `job store ${this.store.locator} is in use by another leader (pid ${cur.body.pid} on ${cur.body.host}); ` +
            `wait for it to finish, stop it with 'toil kill ${this.store.locator}', or retry after its lease expires in ${secs}s`,
          { pid: cur.body.pid, host: cur.body.host },
        );
      }
    } catch (e) {
      if (e instanceof ConflictError) {
        throw new LeaseHeldError(`job store ${this.store.locator} was just taken by another leader`);
      }
      throw e;
    }
    this.timer = setInterval(() => void this.renew(workflowId), Math.max(1000, this.ttlMs / 3));
    this.timer.unref();
  }

  private async renew(workflowId?: string): Promise<void> {
    if (this.lost || this.version === undefined) return;
    try {
      this.version = await this.store.writeShared(LEASE_FILE, JSON.stringify(this.body(workflowId)), { ifVersion: this.version });
    } catch (e) {
      if (e instanceof ConflictError) {
        this.lost = true;
        this.stop();
        this.onLost('another leader took over the job store');
      }
      // Other errors: try again at the next interval; the lease is still valid for a while.
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Gives the lease up (if still ours). */
  async release(): Promise<void> {
    this.stop();
    if (this.lost || this.version === undefined) return;
    const cur = await readLease(this.store).catch(() => undefined);
    if (cur && cur.body.leaderId === this.id) await this.store.deleteShared(LEASE_FILE).catch(() => undefined);
  }
}
