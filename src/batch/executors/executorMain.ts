/**
 * An executor: a long-lived worker (`toil worker <jobStore> --executor <name>`, in an executor
 * pod) that runs the jobs its leader gives it, several at once, each in its own warm process of
 * a local pool (localPool.ts: a job that ends its process, or uses more memory than it asked
 * for, ends alone). The conversation with the leader is protocol.ts's: this module reads the
 * down stream, runs what it says, and writes the ends.
 */
import os from 'node:os';
import { sleep } from '../../concurrency.js';
import { errorMessage } from '../../errors.js';
import { openJobStore } from '../../jobstore/open.js';
import type { JobStore } from '../../jobstore/types.js';
import { LocalPool, type PoolEnd } from '../localPool.js';
import {
  BUSY_POLL_MS,
  DownMessageSchema,
  FLUSH_MS,
  POLL_MS,
  QUIET_POLL_MS,
  Stream,
  UpMessageSchema,
  type DownMessage,
  type UpMessage,
} from './protocol.js';

export interface ExecutorOptions {
  locator: string;
  name: string;
  /** Where jobs put their temporary files and the node cache (TOIL_WORKDIR). */
  workDir?: string;
  /** How long to wait for the leader's first message (default 10 min: the leader writes it before the executor exists). */
  firstSilenceMs?: number;
  /** Lines for the executor's own log (its pod's output). */
  say?: (line: string) => void;
  /** Stops the executor: its jobs are killed and it returns (SIGTERM). */
  signal?: AbortSignal;
}

/** Exit codes: 0 told to stop, or the leader went silent; 4 the job store cannot be opened. */
export const EXECUTOR_EXIT = { ok: 0, store: 4, stopped: 143 } as const;

/** Runs an executor until it is told to stop, its leader goes silent, or `signal` aborts. Never throws. */
export async function runExecutor(o: ExecutorOptions): Promise<number> {
  const say = o.say ?? ((line: string) => process.stderr.write(`toil executor ${o.name}: ${line}\n`));
  let store: JobStore;
  try {
    store = await openJobStore(o.locator);
  } catch (e) {
    say(`cannot open the job store: ${errorMessage(e)}`);
    return EXECUTOR_EXIT.store;
  }
  const ex = new Executor(store, o, say);
  return ex.run();
}

class Executor {
  private readonly down: Stream<DownMessage>;
  private readonly up: Stream<UpMessage>;
  private readonly pool: LocalPool;
  private readonly pending: UpMessage['ends'] = [];
  /** Assigned jobs waiting for a slot, in order. */
  private readonly waiting: DownMessage['assign'] = [];
  private slots = 1;
  private flushing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastHeard = Date.now();
  /** The wait before the next look for a message (see protocol.ts: fast after a message or a job's end, slower while nothing comes). */
  private interval = BUSY_POLL_MS;
  /** Ends the wait before the next look early (a slot freed with nothing queued for it). */
  private wake: AbortController | undefined;
  private silenceMs: number;
  private stopRequested = false;
  private finishing = false;
  /** finish()'s flush of the ends gathered, the only one once exiting. */
  private lastFlush = false;

  constructor(
    store: JobStore,
    private readonly o: ExecutorOptions,
    private readonly say: (line: string) => void,
  ) {
    this.down = new Stream(store, o.name, 'down', DownMessageSchema);
    this.up = new Stream(store, o.name, 'up', UpMessageSchema);
    this.silenceMs = o.firstSilenceMs ?? 600_000;
    this.pool = new LocalPool({ onEnd: (key, end) => this.ended(key, end) });
  }

  async run(): Promise<number> {
    const stopped = this.o.signal;
    await this.up.write({ ends: [], started: { host: os.hostname(), pid: process.pid } }).catch((e: unknown) => {
      this.say(`cannot tell the leader it started: ${errorMessage(e)}`);
    });
    while (!stopped?.aborted) {
      let message: DownMessage | undefined;
      try {
        message = await this.down.read();
      } catch (e) {
        this.say(`cannot read the leader's next message (trying again): ${errorMessage(e)}`);
      }
      if (message) {
        this.lastHeard = Date.now();
        this.handle(message);
        this.interval = this.queued() ? POLL_MS : BUSY_POLL_MS;
        if (this.stopRequested && this.pool.running === 0 && this.waiting.length === 0)
          return this.finish('told to stop', EXECUTOR_EXIT.ok);
        continue;
      }
      if (Date.now() - this.lastHeard > this.silenceMs) {
        return this.finish(`heard nothing from the leader for ${Math.round(this.silenceMs / 1000)} s: taking it as gone`, EXECUTOR_EXIT.ok);
      }
      this.wake = new AbortController();
      await sleep(this.interval, stopped ? AbortSignal.any([stopped, this.wake.signal]) : this.wake.signal);
      this.interval = this.nextInterval();
    }
    return this.finish('stopped', EXECUTOR_EXIT.stopped);
  }

  private handle(m: DownMessage): void {
    this.silenceMs = m.silenceMs;
    this.slots = m.slots;
    this.pool.warm(this.slots, this.o.locator);
    for (const key of m.kill) {
      const i = this.waiting.findIndex((a) => a.key === key);
      if (i >= 0) {
        this.waiting.splice(i, 1);
        this.ended(key, { outcome: 'killed', exitCode: null, message: 'killed before it started', countsAsAttempt: false });
      }
      // A running one that ended meanwhile has its end on the way already.
      else this.pool.kill(key);
    }
    this.waiting.push(...m.assign);
    if (m.stop) this.stopRequested = true;
    this.startMore();
  }

  /** Starts waiting jobs while slots are free. */
  private startMore(): void {
    while (!this.finishing && this.pool.running < this.slots && this.waiting.length > 0) {
      const a = this.waiting.shift()!;
      const args = { ...a.args, locator: this.o.locator, echo: false };
      delete args.workDir;
      this.pool.start({
        key: a.key,
        args: this.o.workDir ? { ...args, workDir: this.o.workDir } : args,
        ...(a.memoryLimit !== undefined ? { memoryLimit: a.memoryLimit } : {}),
        ...(a.diskLimit !== undefined ? { diskLimit: a.diskLimit } : {}),
      });
    }
  }

  /** Whether every slot has a job to go on with: no hurry for the leader's next message. */
  private queued(): boolean {
    return this.waiting.length > 0;
  }

  /** The wait before the next look, after one that found nothing (protocol.ts). */
  private nextInterval(): number {
    if (this.queued()) return POLL_MS;
    if (this.pool.running >= this.slots) return Math.min(2 * Math.max(this.interval, POLL_MS), QUIET_POLL_MS);
    return Math.min(2 * this.interval, POLL_MS);
  }

  private ended(key: number, end: PoolEnd): void {
    this.pending.push({ key, end });
    // While exiting, finish() decides what goes up: the ends of jobs it killed on SIGTERM must
    // not (their leader tells them lost with the executor, not failed).
    if (this.finishing) return;
    this.startMore();
    if (!this.queued() || this.pending.length >= this.slots) {
      // A slot is free with nothing for it (or a slot's worth of ends is here): the leader hears now, and its next jobs come soon.
      if (!this.queued()) {
        this.interval = BUSY_POLL_MS;
        this.wake?.abort();
      }
      void this.flush();
      return;
    }
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      if (!this.finishing) void this.flush();
    }, FLUSH_MS);
  }

  /** Writes the ends gathered so far as one message; one write at a time, a failed one tried again. */
  private flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    // The field is cleared in a `.finally` callback, which runs after it is set even when there was nothing to write.
    const flushing = this.writeEnds().finally(() => {
      if (this.flushing === flushing) this.flushing = undefined;
    });
    this.flushing = flushing;
    return flushing;
  }

  private async writeEnds(): Promise<void> {
    while (this.pending.length > 0) {
      // Exiting: only finish()'s last flush sends (see ended()).
      if (this.finishing && !this.lastFlush) return;
      const ends = this.pending.slice();
      try {
        await this.up.write({ ends });
        this.pending.splice(0, ends.length);
      } catch (e) {
        // While exiting, one failed try is the last: nothing may keep an executor from leaving.
        if (this.finishing) return this.say(`cannot send ${ends.length} job end(s) to the leader (exiting anyway): ${errorMessage(e)}`);
        this.say(`cannot send ${ends.length} job end(s) to the leader (trying again): ${errorMessage(e)}`);
        await sleep(1000);
      }
    }
  }

  private async finish(why: string, code: number): Promise<number> {
    this.finishing = true;
    this.say(`${why}; ${this.pool.running > 0 ? `killing its ${this.pool.running} running job(s) and ` : ''}exiting`);
    await this.pool.shutdown();
    if (code === EXECUTOR_EXIT.ok && this.pending.length > 0) {
      this.lastFlush = true;
      await this.flush();
    }
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.down.settle();
    return code;
  }
}
