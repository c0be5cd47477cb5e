/**
 * The per-job view of files (`ctx.fileStore`). Files go straight to the job store (no node
 * cache yet). Deletions wait for the job's commit; files written by an attempt that fails are
 * removed again; the job's temporary directory is removed when the job ends.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FileStore } from '../job/context.js';
import type { FileID } from '../job/types.js';
import { safeBasename } from '../jobstore/types.js';
import type { JobStore } from '../jobstore/types.js';

export class JobFileStore implements FileStore {
  /** Files written by this attempt (removed if it fails). */
  readonly written: FileID[] = [];
  /** Files to delete once the job commits. */
  readonly toDelete: FileID[] = [];
  private tempRoot: string | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly jobId: string,
    private readonly workDir: string,
  ) {}

  async writeGlobalFile(localPath: string): Promise<FileID> {
    const id = await this.store.writeFile(localPath, { ownerJobId: this.jobId });
    this.written.push(id);
    return id;
  }

  async writeGlobalFileStream(data: Readable | AsyncIterable<Uint8Array> | string | Uint8Array, basename = 'data'): Promise<FileID> {
    const source = typeof data === 'string' ? Buffer.from(data) : data;
    const id = await this.store.writeFile(source, { basename, ownerJobId: this.jobId });
    this.written.push(id);
    return id;
  }

  async readGlobalFile(id: FileID, localPath?: string): Promise<string> {
    const dest = localPath ?? path.join(await mkdtemp(path.join(await this.localTempDir(), 'in-')), safeBasename(id.split('/').pop() ?? 'data'));
    await mkdir(path.dirname(path.resolve(dest)), { recursive: true });
    await this.store.readFile(id, dest);
    return dest;
  }

  readGlobalFileStream(id: FileID): Promise<Readable> {
    return this.store.readFileStream(id);
  }

  async deleteGlobalFile(id: FileID): Promise<void> {
    if (!this.toDelete.includes(id)) this.toDelete.push(id);
  }

  async localTempDir(): Promise<string> {
    if (!this.tempRoot) {
      await mkdir(this.workDir, { recursive: true });
      this.tempRoot = await mkdtemp(path.join(this.workDir, `job-${this.jobId.slice(0, 40)}-`));
    }
    return this.tempRoot;
  }

  /** Removes the temporary directory; after a failed attempt, also the files it wrote. */
  async finish(failed: boolean): Promise<void> {
    if (this.tempRoot) await rm(this.tempRoot, { recursive: true, force: true });
    if (failed) await Promise.all(this.written.map((id) => this.store.deleteFile(id).catch(() => undefined)));
  }
}
