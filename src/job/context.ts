import type { Job } from './job.js';
import type { JobPromise } from './promise.js';
import type { FileID, ResolvedRequirements } from './types.js';
import type { Readable } from 'node:stream';

/**
 * The per-job view of files (`ctx.fileStore`). Files written here are global: any later job
 * given the {@link FileID} can read them until they are deleted.
 */
export interface FileStore {
  /** Copies a local file into the job store and returns its id. */
  writeGlobalFile(localPath: string): Promise<FileID>;
  /** Streams data into the job store as a new file named `basename`. */
  writeGlobalFileStream(data: Readable | AsyncIterable<Uint8Array> | string | Uint8Array, basename?: string): Promise<FileID>;
  /**
   * Makes a file available at `localPath` (default: a new path in this job's temporary
   * directory) and returns the path. With the node cache on (`--disableCaching false`, the
   * default) it is a hard link to the node's cached copy, for reading only: ask for
   * `{ mutable: true }` to get a private copy you may change. Without the cache it is a copy.
   */
  readGlobalFile(id: FileID, localPath?: string, options?: ReadFileOptions): Promise<string>;
  readGlobalFile(id: FileID, options: ReadFileOptions): Promise<string>;
  /** Opens a file for streaming reads. */
  readGlobalFileStream(id: FileID): Promise<Readable>;
  /** Deletes a file when this job commits (never if the job fails). */
  deleteGlobalFile(id: FileID): Promise<void>;
  /** A directory of this job's own, removed when the job ends. */
  localTempDir(): Promise<string>;
  /**
   * Runs `produce(dir)` once per node for `key` (say, pulling a container image into `dir`)
   * while other callers on the node wait, and gives every caller `dir`. If the producer throws
   * or its process dies, the next caller runs it again in an emptied directory. The key is
   * this job store's (its workflows share the directory) unless `{ shared: true }` is given.
   * The key names what the producer makes: when that changes, change the key.
   */
  onceOnNode(key: string, produce: (dir: string) => Promise<void>, options?: OnceOptions): Promise<string>;
}

/** How {@link FileStore.onceOnNode} shares its directory. */
export interface OnceOptions {
  /**
   * One directory for every workflow on the node that uses this key (say, an image cache
   * keyed by the image's digest), whichever job store it runs from: the first workflow's
   * producer makes it and the others use it as made. A directory changed after it was made
   * is made again. Share only with workflows you trust: whoever can write to the node's cache
   * directory can change what the others use (one host path per trust domain).
   */
  shared?: boolean;
}

/** How {@link FileStore.readGlobalFile} places a file. */
export interface ReadFileOptions {
  /** A private copy the job may change, instead of a read-only link to the node's cached copy. */
  mutable?: boolean;
}

/** What a running job sees: logging, dynamic successors and files. */
export interface JobContext {
  readonly jobId: string;
  readonly jobName: string;
  readonly workflowId: string;
  /** The resources this job was given. */
  readonly requirements: ResolvedRequirements;
  /** Sends a message to the leader's log. */
  log(message: string): void;
  /** Adds a child to the running job (runs after this job returns). Returns `job`. */
  addChild<T extends Job<unknown>>(job: T): T;
  /** Adds a follow-on to the running job (runs after this job and all its children). */
  addFollowOn<T extends Job<unknown>>(job: T): T;
  readonly fileStore: FileStore;
}

/** What the workflow module's default export receives. */
export interface WorkflowContext {
  /** The command-line arguments after `--`. */
  readonly args: readonly string[];
  readonly workflowId: string;
  /** Copies a `file:`, `s3://` or `http(s)://` URL (or a local path) into the job store. */
  importFile(url: string): Promise<FileID>;
  /** Copies a file out of the job store to a `file:` URL or local path once the workflow succeeds. */
  exportFile(id: FileID | JobPromise<FileID>, url: string): void;
  /** Writes to the leader's log. */
  log(message: string): void;
}
