/**
 * A job store whose changes pass a fence: the store a leader uses, so that a leader that no
 * longer holds its lease changes nothing a successor relies on.
 *
 * Every call that changes what the store holds — records updated or deleted, files deleted,
 * shared files written or deleted, messages taken, job logs written, the store destroyed — first
 * asks the fence ({@link Fence.hold}), which refuses (throws LeaseLostError) unless the lease is
 * held with time to spare, and gives a signal that aborts when the lease's validity ends; the
 * call's requests carry that signal (`requestSignal.ts`), so none is still being retried after
 * the validity ends. Reads pass straight through, and so do the creation of a new record, file
 * or message (a new name changes nothing anybody holds) and the creation of the store itself.
 */
import type { Readable } from 'node:stream';
import type { FileID, JobRecord } from '../job/types.js';
import { withRequestSignal } from './requestSignal.js';
import type { ChannelMessage, FileSource, JobStore, Versioned, WriteCondition } from './types.js';

/** What decides whether a change may be made now (the leader's lease). */
export interface Fence {
  /**
   * Resolves to a signal that aborts when the right to change the store ends, if it is held now
   * with time to spare for one request; otherwise rejects with LeaseLostError naming `doing`.
   */
  hold(doing: string): Promise<AbortSignal>;
}

export class FencedJobStore implements JobStore {
  readonly locator: string;

  constructor(
    private readonly store: JobStore,
    private readonly fence: Fence,
  ) {
    this.locator = store.locator;
  }

  /** Runs a change to the store, if the fence allows it, under the fence's signal. */
  private async change<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    const signal = await this.fence.hold(doing);
    return withRequestSignal(signal, fn);
  }

  exists(): Promise<boolean> {
    return this.store.exists();
  }
  create(): Promise<void> {
    return this.store.create();
  }
  destroy(): Promise<void> {
    return this.change(`destroy the job store ${this.locator}`, () => this.store.destroy());
  }

  createJob(record: JobRecord): Promise<string> {
    return this.store.createJob(record);
  }
  loadJob(id: string): Promise<Versioned<JobRecord>> {
    return this.store.loadJob(id);
  }
  updateJob(record: JobRecord, expectedVersion: string): Promise<string> {
    return this.change(`update job ${record.id}`, () => this.store.updateJob(record, expectedVersion));
  }
  deleteJob(id: string): Promise<void> {
    return this.change(`delete job ${id}`, () => this.store.deleteJob(id));
  }
  jobExists(id: string): Promise<boolean> {
    return this.store.jobExists(id);
  }
  listJobs(): AsyncIterable<Versioned<JobRecord>> {
    return this.store.listJobs();
  }

  writeFile(source: FileSource, opts?: { basename?: string; ownerJobId?: string }): Promise<FileID> {
    return this.store.writeFile(source, opts);
  }
  readFile(id: FileID, localPath: string): Promise<void> {
    return this.store.readFile(id, localPath);
  }
  readFileStream(id: FileID): Promise<Readable> {
    return this.store.readFileStream(id);
  }
  deleteFile(id: FileID): Promise<void> {
    return this.change(`delete file ${id}`, () => this.store.deleteFile(id));
  }
  fileExists(id: FileID): Promise<boolean> {
    return this.store.fileExists(id);
  }
  fileSize(id: FileID): Promise<number> {
    return this.store.fileSize(id);
  }
  deleteFilesOf(ownerJobId: string): Promise<number> {
    return this.change(`delete the files of job ${ownerJobId}`, () => this.store.deleteFilesOf(ownerJobId));
  }

  writeShared(name: string, data: Uint8Array | string, cond?: WriteCondition): Promise<string> {
    return this.change(`write ${name}`, () => this.store.writeShared(name, data, cond));
  }
  readShared(name: string): Promise<Versioned<Buffer> | undefined> {
    return this.store.readShared(name);
  }
  deleteShared(name: string): Promise<void> {
    return this.change(`delete ${name}`, () => this.store.deleteShared(name));
  }

  sendMessage(msg: ChannelMessage): Promise<void> {
    return this.store.sendMessage(msg);
  }
  receiveMessages(): Promise<ChannelMessage[]> {
    return this.change('take worker messages', () => this.store.receiveMessages());
  }

  writeJobLog(jobId: string, text: string): Promise<void> {
    return this.change(`write the log of job ${jobId}`, () => this.store.writeJobLog(jobId, text));
  }
  readJobLog(jobId: string): Promise<string | undefined> {
    return this.store.readJobLog(jobId);
  }
}
