/**
 * The job store: the durable home of a workflow's job records, files, shared files, job logs
 * and the worker → leader message channel. Backends: the file job store (a directory) and the
 * AWS job store (S3). Every backend passes the same conformance suite
 * (`test/jobstore/conformance.ts`).
 *
 * Versions are opaque strings: an update names the version it read, and loses with a
 * {@link ConflictError} when somebody wrote a newer one first. That is how a stale writer (a
 * worker presumed lost, finishing late) is kept from overwriting newer state.
 */
import path from 'node:path';
import { UsageError } from '../errors.js';
import type { Readable } from 'node:stream';
import type { FileID, JobRecord } from '../job/types.js';

export interface Versioned<T> {
  value: T;
  version: string;
}

/**
 * A message from a worker to the leader: log lines from `ctx.log`, a job's stats, or why an
 * attempt failed (`text`: one line, the error's message first; `stack`: its stack frames).
 */
export interface ChannelMessage {
  kind: 'log' | 'stats' | 'failure';
  /** Log: `warning` for what the worker itself warns of (a job's `ctx.log` lines are info). */
  level?: 'warning';
  jobId: string;
  jobName: string;
  text?: string;
  stack?: string;
  /** Stats: wall-clock seconds, CPU seconds (the worker's and its children's), peak RSS in bytes (worker/measure.ts). */
  wallSeconds?: number;
  cpuSeconds?: number;
  peakRss?: number;
  /** Stats, when the workflow measures its jobs (`--stats`, `--trace`): the rest of what the worker measured. */
  measured?: WorkerMeasures;
  /** Stats: the job's node cache reads (hits, downloads, and their bytes). */
  cache?: { hits: number; misses: number; hitBytes: number; missBytes: number };
  at: number;
}

/** What a worker measured of one attempt besides times and peak memory (see worker/measure.ts). */
export interface WorkerMeasures {
  /** When the attempt started, in ms since the epoch. */
  startedAt: number;
  /** The part of `cpuSeconds` used by the job's child processes. */
  childCpuSeconds: number;
  /** `job`: the peak since the job started; `process`: since its worker process started. */
  peakScope: 'job' | 'process';
  /** Bytes the job read through its file store (from the job store or the node cache) and wrote to the job store. */
  readBytes: number;
  writtenBytes: number;
  /** Bytes in the job's temporary directory when it ended. */
  diskBytes: number;
  /** Where it ran: the host name (in a pod, the pod's name) and the worker's process id. */
  host: string;
  pid: number;
  /** Whether the job's code succeeded and its result was committed. */
  ok: boolean;
}

export interface WriteCondition {
  /** Write only if the current version is this one. */
  ifVersion?: string;
  /** Write only if there is no such shared file yet. */
  ifAbsent?: boolean;
}

export type FileSource = string | Readable | AsyncIterable<Uint8Array> | Uint8Array;

export interface JobStore {
  /** The locator this store was opened with, e.g. `file:/data/js` or `aws:us-west-2:my-run`. */
  readonly locator: string;

  /** Whether the store has been created. */
  exists(): Promise<boolean>;
  /** Creates an empty store. Fails with code JOBSTORE_EXISTS if it exists. */
  create(): Promise<void>;
  /**
   * Removes everything the store holds, and the store itself. Succeeds if already gone. The store
   * is first made gone for everyone (its marker is removed), then emptied: a request signal
   * (`requestSignal.ts`) can stop the first part, never the emptying half-way.
   */
  destroy(): Promise<void>;

  /** Saves a new job record. Fails with CONFLICT if the id exists. */
  createJob(record: JobRecord): Promise<string>;
  /** Loads a job record and its version. Fails with NOT_FOUND. */
  loadJob(id: string): Promise<Versioned<JobRecord>>;
  /** Replaces a record if its version is still `expectedVersion`; returns the new version. */
  updateJob(record: JobRecord, expectedVersion: string): Promise<string>;
  /** Deletes a record. Succeeds if it does not exist. */
  deleteJob(id: string): Promise<void>;
  jobExists(id: string): Promise<boolean>;
  /** Every job record, in no particular order. */
  listJobs(): AsyncIterable<Versioned<JobRecord>>;

  /** Stores a new file and returns its id. `basename` defaults to the source path's. */
  writeFile(source: FileSource, opts?: { basename?: string; ownerJobId?: string }): Promise<FileID>;
  /** Copies a file to a local path. Fails with NOT_FOUND. */
  readFile(id: FileID, localPath: string): Promise<void>;
  /** Opens a file for reading. Fails with NOT_FOUND. */
  readFileStream(id: FileID): Promise<Readable>;
  /** Deletes a file. Succeeds if it does not exist. */
  deleteFile(id: FileID): Promise<void>;
  fileExists(id: FileID): Promise<boolean>;
  /** Size in bytes. Fails with NOT_FOUND. */
  fileSize(id: FileID): Promise<number>;
  /** Deletes every file written with `ownerJobId` (see writeFile); returns how many there were. */
  deleteFilesOf(ownerJobId: string): Promise<number>;

  /** Writes a shared file (by name), optionally conditionally; returns its new version. */
  writeShared(name: string, data: Uint8Array | string, cond?: WriteCondition): Promise<string>;
  /** Reads a shared file, or undefined if there is none. */
  readShared(name: string): Promise<Versioned<Buffer> | undefined>;
  /** Deletes a shared file. Succeeds if it does not exist. */
  deleteShared(name: string): Promise<void>;

  /** Appends a message to the worker → leader channel. */
  sendMessage(msg: ChannelMessage): Promise<void>;
  /** Takes the pending messages, oldest first; each message is returned to exactly one call. */
  receiveMessages(): Promise<ChannelMessage[]>;

  /** Saves the captured output of a job's latest attempt. */
  writeJobLog(jobId: string, text: string): Promise<void>;
  /** The captured output of a job's latest attempt, if any. */
  readJobLog(jobId: string): Promise<string | undefined>;
}

/** Shared-file names must be simple: letters, digits and `._-`. */
export function checkSharedName(name: string): void {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(name) || name.startsWith('.')) {
    throw new UsageError(`invalid shared file name '${name}' (letters, digits and ._- only, not starting with a dot)`);
  }
}

/** Job ids must be simple too (they become file and object names). */
export function checkJobId(id: string): void {
  if (!/^[A-Za-z0-9._-]{1,200}$/.test(id) || id.startsWith('.'))
    throw new UsageError(`invalid job id '${id}' (letters, digits and ._- only, not starting with a dot)`);
}

// eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
const UNSAFE_IN_NAMES = /[\0-\x1f\x7f/\\]/g;

/** A file name safe to keep in a file id, a key or a path: no directories, no control characters. */
export function safeBasename(name: string): string {
  const b = path.basename(name).replace(UNSAFE_IN_NAMES, '_').slice(0, 200);
  return b === '' || b === '.' || b === '..' ? 'data' : b;
}
