/**
 * How work reaches an executor, and how its ends come back: through the job store's shared
 * files, which every executor can already read and write (no cluster component, no new RBAC
 * verb, no pod network, the same with the leader inside or outside the cluster).
 *
 * Each executor has a name (`<incarnation>x<n>`, unique to one leader) and two numbered streams:
 *
 * ```
 * exec-<name>-down-<n>   leader → executor, n = 1, 2, …   { assign, kill, stop, silenceMs }
 * exec-<name>-up-<n>     executor → leader, n = 1, 2, …   { started } first, then { ends }
 * ```
 *
 * - **Writing.** A writer writes message n+1 only after message n was written, each with
 *   `ifAbsent`: a second writer of the same stream (a leader that took over while the old one
 *   still runs) conflicts instead of overwriting. Messages are never changed.
 * - **Reading.** A reader knows the number it reads next. It reads that name until it exists
 *   (on S3 a GET answering 404, on the file store a failed open), then handles it and moves on
 *   to the next number, deleting it meanwhile (a reader that stops waits for its deletes). So
 *   each message is read once, in order, and nothing is listed. How soon it looks again: an
 *   executor with nothing queued (its next free slot needs a job from the leader) looks
 *   `BUSY_POLL_MS` after a message came or one of its jobs ended, the wait doubling to
 *   `POLL_MS` while none comes; one with a job for every slot (queued, or all slots busy) looks
 *   every `POLL_MS`, or `QUIET_POLL_MS` while every slot is busy and none has ended for that
 *   long (only a kill could be urgent; a job's end wakes it). The leader looks at an
 *   executor's ends `ENDS_POLL_MS` after some came, the wait doubling to `QUIET_POLL_MS` (to
 *   `POLL_MS` while it has not said it started).
 * - **The leader** writes one down message per executor per round of assignments (all the jobs
 *   it gives that executor at once), and one with nothing in it when it has sent nothing for
 *   `HEARTBEAT_MS`. It gives an executor jobs for its free slots (it keeps the account;
 *   beyond those, short jobs wait in the executor's own queue, and are sent a slot's worth at a
 *   time — see poolSizing.ts). It reads the up stream of every executor that has jobs.
 * - **The executor** says it has started (its first up message: the leader makes no more
 *   executors while `MAX_STARTING` have not, so a full cluster is not asked for more), runs the
 *   assigned jobs in order, `slots` at a time, each in its own process of its local pool, kills
 *   those named in `kill` (each reported ended as `killed`), and writes its ends in batches: at
 *   once when a slot is free with nothing queued for it (it needs the leader's next job), when
 *   a slot's worth have gathered, or `FLUSH_MS` after the first. `stop` is sent only to an
 *   executor with no jobs: it exits 0. An executor that has read nothing from its leader for
 *   `silenceMs` (the leader sets it: two lease periods) takes the leader as gone: it kills its
 *   jobs and exits, so no executor outlives its leader by long even when nobody deletes it (the
 *   next leader runs those jobs again).
 * - **An executor that ends** (its pod deleted, evicted, preempted, lost, killed as a whole) is
 *   reported by the batch system that runs it; the leader reads what is left of its up stream
 *   first, then ends every job it still had with the executor's reason (executorBatch.ts).
 *
 * Latency from a ready job to its start on an idle executor: one write and at most one poll
 * period. Requests per job on the job store: its share of one down write, one read, one delete
 * and of one up write, read and delete (less when a round carries several jobs), plus the looks
 * that find nothing: at most `1000 / QUIET_POLL_MS` a second each way per busy executor once
 * nothing comes (the leader reads only executors with jobs), more only while messages do.
 */
import { z } from 'zod';
import { ConflictError } from '../../errors.js';
import type { JobStore } from '../../jobstore/types.js';
import type { PoolEnd } from '../localPool.js';
import type { WorkerArgs } from '../types.js';

/** The shortest wait between looks for the next message: right after a message came. */
export const BUSY_POLL_MS = 25;
/** The longest: while none comes. */
export const POLL_MS = 200;
/** The longest wait of a reader with nothing urgent to hear (see above). */
export const QUIET_POLL_MS = 1000;
/** The leader writes an empty message to an executor it has sent nothing for this long. */
export const HEARTBEAT_MS = 10_000;
/** Most executors made and not started yet (their pods waiting for a node, an image, a container). */
export const MAX_STARTING = 4;
/** An executor with jobs queued gathers the ends of at most this long into one message. */
export const FLUSH_MS = 100;
/** The leader's first look at an executor's ends after some came (they come at most every FLUSH_MS while it is busy). */
export const ENDS_POLL_MS = 50;

/** The shared file of message n of an executor's stream. */
export function messageName(executor: string, stream: 'down' | 'up', n: number): string {
  return `exec-${executor}-${stream}-${n}`;
}

const AssignmentSchema = z.object({
  /** The leader's batch job id. */
  key: z.number().int().positive(),
  args: z.custom<WorkerArgs>((v) => typeof v === 'object' && v !== null && typeof (v as { jobId?: unknown }).jobId === 'string'),
  /** Bytes the job asked for: over it, the job is killed alone. */
  memoryLimit: z.number().positive().optional(),
  /** Bytes of disk its slot gives it: more in its temporary directory, and it is killed alone. */
  diskLimit: z.number().positive().optional(),
});
export type Assignment = z.infer<typeof AssignmentSchema>;

export const DownMessageSchema = z.object({
  assign: z.array(AssignmentSchema).default([]),
  /** Jobs the executor runs at once; assigned ones past that wait in its queue, in order. */
  slots: z.number().int().positive(),
  kill: z.array(z.number().int().positive()).default([]),
  stop: z.boolean().default(false),
  /** How long the executor may hear nothing before it takes the leader as gone. */
  silenceMs: z.number().positive(),
});
export type DownMessage = z.infer<typeof DownMessageSchema>;

const EndSchema = z.object({
  key: z.number().int().positive(),
  end: z.custom<PoolEnd>((v) => typeof v === 'object' && v !== null && typeof (v as { outcome?: unknown }).outcome === 'string'),
});
export const UpMessageSchema = z.object({
  ends: z.array(EndSchema).default([]),
  /** The executor's first message, as it starts: where it runs. */
  started: z.object({ host: z.string(), pid: z.number() }).optional(),
});
export type UpMessage = z.infer<typeof UpMessageSchema>;

/**
 * One direction of one executor's stream: writes message after message, or reads them in order.
 * A parse failure of a message is a terminal error (a writer of another version).
 */
export class Stream<T> {
  private nextWrite = 1;
  private nextRead = 1;
  /** Deletes of read messages still under way (a reader does not wait for them: each name is read once). */
  private readonly deleting = new Set<Promise<void>>();

  constructor(
    private readonly store: JobStore,
    private readonly name: string,
    private readonly stream: 'down' | 'up',
    private readonly schema: z.ZodType<T>,
  ) {}

  /** Writes the next message. A conflict means another writer owns this stream. */
  async write(message: T): Promise<void> {
    const file = messageName(this.name, this.stream, this.nextWrite);
    try {
      await this.store.writeShared(file, JSON.stringify(message), { ifAbsent: true });
    } catch (e) {
      if (e instanceof ConflictError)
        throw new ConflictError(`${file} was written by someone else: another leader or executor uses this executor's name`);
      throw e;
    }
    this.nextWrite++;
  }

  /** The next message if it has been written (and deletes it), or undefined. */
  async read(): Promise<T | undefined> {
    const file = messageName(this.name, this.stream, this.nextRead);
    const got = await this.store.readShared(file);
    if (!got) return undefined;
    const parsed = this.schema.parse(JSON.parse(got.value.toString('utf8')));
    this.nextRead++;
    const deleting = this.store.deleteShared(file).catch(() => undefined);
    this.deleting.add(deleting);
    void deleting.finally(() => this.deleting.delete(deleting));
    return parsed;
  }

  /** Waits for the deletes of read messages still under way. */
  async settle(): Promise<void> {
    await Promise.all([...this.deleting]);
  }

  /** Every message written and not read yet, in order. */
  async readAll(): Promise<T[]> {
    const out: T[] = [];
    for (let m = await this.read(); m !== undefined; m = await this.read()) out.push(m);
    return out;
  }
}
