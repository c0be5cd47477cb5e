/**
 * The leader's account of one executor (executorBatch.ts): its streams, the jobs it holds, what
 * its next message carries, and when it was last written to and read.
 */
import type { JobStore } from '../../jobstore/types.js';
import type { BatchJobRequest } from '../types.js';
import { DownMessageSchema, POLL_MS, Stream, UpMessageSchema, type Assignment, type DownMessage, type UpMessage } from './protocol.js';
import type { Shape } from './shapes.js';

export interface Held {
  id: number;
  req: BatchJobRequest;
  shape: Shape;
  /** When it was given to an executor. */
  assignedAt?: number;
}

export interface Outbox {
  assign: Assignment[];
  kill: number[];
  stop: boolean;
  beat: boolean;
}

export const emptyOutbox = (): Outbox => ({ assign: [], kill: [], stop: false, beat: false });

/** An outbox that failed to go, ahead of what was put in since. */
export const mergeOutbox = (a: Outbox, b: Outbox): Outbox => ({
  assign: [...a.assign, ...b.assign],
  kill: [...a.kill, ...b.kill],
  stop: a.stop || b.stop,
  beat: a.beat || b.beat,
});

export interface Executor {
  name: string;
  shape: Shape;
  /** The inner batch system's id for it, once issued. */
  innerId?: number;
  /** It said it has started. */
  started: boolean;
  down: Stream<DownMessage>;
  up: Stream<UpMessage>;
  jobs: Map<number, Held>;
  /** What the next message carries; `beat`: send one even if empty (the first message, heartbeats). */
  outbox: Outbox;
  sending?: Promise<void>;
  lastSent: number;
  lastRead: number;
  /** The wait between reads of its up stream: ENDS_POLL_MS after one found something, doubling to POLL_MS while none does. */
  readEvery: number;
  idleSince: number;
  stopping: boolean;
  ended: boolean;
}

/** A new executor's account: nothing sent yet, its first message (`beat`) due. */
export function newExecutorRecord(store: JobStore, name: string, shape: Shape): Executor {
  return {
    name,
    shape,
    down: new Stream(store, name, 'down', DownMessageSchema),
    up: new Stream(store, name, 'up', UpMessageSchema),
    started: false,
    jobs: new Map(),
    outbox: { ...emptyOutbox(), beat: true },
    lastSent: 0,
    lastRead: 0,
    readEvery: POLL_MS,
    idleSince: Date.now(),
    stopping: false,
    ended: false,
  };
}
