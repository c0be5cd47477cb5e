/**
 * The per-job view of files (`ctx.fileStore`). With the node cache (`nodeCache.ts`), reads are
 * hard links to the node's cached copy (downloaded once per node), written files enter the
 * cache, and the job's `disk` requirement is reserved on the node while it runs; without it,
 * files go straight to and from the job store. Deletions wait for the job's commit; files
 * written by an attempt that fails are removed again; the job's temporary directory is removed
 * when the job ends, and is registered with the node cache (files through it or not) so that
 * it goes too when the worker is killed.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ToilError, errorMessage } from '../errors.js';
import { createLogger } from '../log.js';
import type { FileStore, OnceOptions, ReadFileOptions } from '../job/context.js';
import type { FileID } from '../job/types.js';
import { safeBasename } from '../jobstore/types.js';
import type { JobStore } from '../jobstore/types.js';
import { treeBytes } from '../treeBytes.js';
import { emptyStats, type CacheStats } from './cacheRules.js';
import { placeFile } from './cacheFiles.js';
import { cacheKey, type NodeCache } from './nodeCache.js';

/** How a job reaches the node cache. */
export interface CacheAccess {
  /** The process's node cache, opened on first use (throws if it cannot be). */
  open(): NodeCache;
  /** Whether files go through it (`--disableCaching false`); once-per-node and the job's directory use it either way. */
  files: boolean;
}

export interface JobFileStoreOptions {
  store: JobStore;
  jobId: string;
  /** Where the job's temporary directory goes. */
  workDir: string;
  cache?: CacheAccess;
  /** Told the job's temporary directory once it is made (a pool that enforces the job's disk watches it). */
  onTempDir?: (dir: string) => void;
}

export class JobFileStore implements FileStore {
  /** Files written by this attempt (removed if it fails). */
  readonly written: FileID[] = [];
  /** Files to delete once the job commits. */
  readonly toDelete: FileID[] = [];
  /** Reads served from the node cache and downloads, for the leader's totals. */
  readonly stats: CacheStats = emptyStats();
  /** Bytes the job read (from the job store or the node cache) and wrote to the job store. */
  readonly io = { readBytes: 0, writtenBytes: 0 };
  /** What the leader is to log as warnings about this job's use of the node. */
  readonly warnings: string[] = [];
  private tempRoot: string | undefined;
  private readonly store: JobStore;
  private readonly jobId: string;
  private readonly workDir: string;
  /** This attempt's name in the node cache (its references and reservation). */
  private readonly holdKey: string;
  private readonly onTempDir: ((dir: string) => void) | undefined;
  private cacheState: { access: CacheAccess; cache?: NodeCache; broken?: boolean } | undefined;

  constructor(o: JobFileStoreOptions) {
    this.store = o.store;
    this.jobId = o.jobId;
    this.workDir = o.workDir;
    this.holdKey = `${o.jobId}:${randomBytes(6).toString('hex')}`;
    if (o.cache) this.cacheState = { access: o.cache };
    this.onTempDir = o.onTempDir;
  }

  /** Reserves the job's disk on the node (cache on): waits for room, or fails naming the sizes. */
  async start(disk: number): Promise<void> {
    await this.filesCache()?.reserve(this.holdKey, disk);
  }

  async writeGlobalFile(localPath: string): Promise<FileID> {
    this.io.writtenBytes += (await stat(localPath)).size;
    const cache = this.filesCache();
    if (!cache) return this.remember(await this.store.writeFile(localPath, { ownerJobId: this.jobId }));
    // The cached copy is taken first and uploaded, so that it holds exactly the stored bytes.
    const copy = cache.tempPath();
    try {
      await copyFile(localPath, copy, constants.COPYFILE_FICLONE);
      const id = this.remember(
        await this.store.writeFile(copy, { basename: safeBasename(path.basename(localPath)), ownerJobId: this.jobId }),
      );
      await cache.admit({ key: cacheKey(this.store.locator, id), source: copy });
      return id;
    } finally {
      await rm(copy, { force: true });
    }
  }

  async writeGlobalFileStream(data: Readable | AsyncIterable<Uint8Array> | string | Uint8Array, basename = 'data'): Promise<FileID> {
    const source = typeof data === 'string' ? Buffer.from(data) : data;
    const counted = source instanceof Uint8Array ? source : this.counting(source, 'writtenBytes');
    if (source instanceof Uint8Array) this.io.writtenBytes += source.byteLength;
    return this.remember(await this.store.writeFile(counted, { basename, ownerJobId: this.jobId }));
  }

  readGlobalFile(id: FileID, localPath?: string, options?: ReadFileOptions): Promise<string>;
  readGlobalFile(id: FileID, options: ReadFileOptions): Promise<string>;
  async readGlobalFile(id: FileID, pathOrOptions?: string | ReadFileOptions, options: ReadFileOptions = {}): Promise<string> {
    const localPath = typeof pathOrOptions === 'string' ? pathOrOptions : undefined;
    const mutable = (typeof pathOrOptions === 'object' ? pathOrOptions : options).mutable === true;
    const dest =
      localPath ?? path.join(await mkdtemp(path.join(await this.localTempDir(), 'in-')), safeBasename(id.split('/').pop() ?? 'data'));
    await mkdir(path.dirname(path.resolve(dest)), { recursive: true });
    const cache = this.filesCache();
    const cached = cache ? await this.readCached(cache, id, { dest, mutable }) : false;
    if (!cached) await this.download(id, dest);
    return dest;
  }

  async readGlobalFileStream(id: FileID): Promise<Readable> {
    return Readable.from(this.counting(await this.store.readFileStream(id), 'readBytes'));
  }

  /** The bytes of the job's temporary directory now (its local disk use, beside cached files). */
  tempDirBytes(): Promise<number> {
    return this.tempRoot ? treeBytes(this.tempRoot) : Promise.resolve(0);
  }

  /** Passes a stream's chunks through, adding their bytes to `io[what]`. */
  private async *counting(source: AsyncIterable<Uint8Array>, what: keyof JobFileStore['io']): AsyncIterable<Uint8Array> {
    for await (const chunk of source) {
      this.io[what] += chunk.byteLength;
      yield chunk;
    }
  }

  async deleteGlobalFile(id: FileID): Promise<void> {
    if (!this.toDelete.includes(id)) this.toDelete.push(id);
  }

  /** The job's directory, registered with the node cache before it is made (so it goes if the worker is killed). */
  async localTempDir(): Promise<string> {
    if (!this.tempRoot) {
      await mkdir(this.workDir, { recursive: true });
      const dir = path.join(this.workDir, `job-${this.jobId.slice(0, 40)}-${randomBytes(4).toString('hex')}`);
      this.withNodeCache((c) => c.trackDir(dir, this.holdKey));
      await mkdir(dir);
      this.tempRoot = dir;
      this.onTempDir?.(dir);
    }
    return this.tempRoot;
  }

  /** Once per node, for this job store's workflows or (`shared`) for every workflow on the node. */
  async onceOnNode(key: string, produce: (dir: string) => Promise<void>, options: OnceOptions = {}): Promise<string> {
    if (!this.cacheState) throw new ToilError('INTERNAL', 'onceOnNode: this file store has no node cache');
    const scope = options.shared === true ? undefined : this.store.locator;
    const { dir, notes } = await this.cacheState.access.open().onceOnNode(key, produce, { scope });
    this.warnings.push(...notes);
    return dir;
  }

  /**
   * Removes the temporary directory; after a failed attempt, also the files it wrote. Ends the
   * job's use of the node cache: its reservation and references go, and the cached copies of
   * files deleted from the job store.
   */
  async finish(failed: boolean): Promise<void> {
    if (this.tempRoot) {
      await rm(this.tempRoot, { recursive: true, force: true });
      const dir = this.tempRoot;
      this.withNodeCache((c) => c.untrackDir(dir));
    }
    if (failed) await Promise.all(this.written.map((id) => this.store.deleteFile(id).catch(() => undefined)));
    const cache = this.filesCache();
    if (!cache) return;
    cache.release(this.holdKey);
    for (const id of failed ? this.written : this.toDelete) cache.forget(cacheKey(this.store.locator, id));
  }

  /** Reads through the node cache; false when the file is to be read uncached (it did not fit). */
  private async readCached(cache: NodeCache, id: FileID, o: { dest: string; mutable: boolean }): Promise<boolean> {
    const key = cacheKey(this.store.locator, id);
    const size = cache.cachedSize(key) ?? (await this.store.fileSize(id));
    let got;
    try {
      got = await cache.obtain({ key, size, job: this.holdKey, what: `file ${id}`, fetch: (d) => this.store.readFile(id, d) });
    } catch (e) {
      if (e instanceof ToilError) throw e; // the job store's answer, not the cache's trouble
      this.cacheBroken(e);
      return false;
    }
    this.warnings.push(...got.notes);
    if (!got.path) return false;
    await placeFile(got.path, o.dest, { copy: o.mutable });
    this.count(got.hit ? 'hit' : 'miss', size);
    return true;
  }

  private async download(id: FileID, dest: string): Promise<void> {
    await this.store.readFile(id, dest);
    this.count('miss', (await stat(dest)).size);
  }

  private count(kind: 'hit' | 'miss', bytes: number): void {
    this.io.readBytes += bytes;
    if (kind === 'hit') {
      this.stats.hits++;
      this.stats.hitBytes += bytes;
    } else {
      this.stats.misses++;
      this.stats.missBytes += bytes;
    }
  }

  private remember(id: FileID): FileID {
    this.written.push(id);
    return id;
  }

  /** The node cache, when files go through it and it can be used. */
  private filesCache(): NodeCache | undefined {
    return this.cacheState?.access.files ? this.nodeCache() : undefined;
  }

  /** Does `fn` with the node cache when it can be used; trouble with it is not the job's failure. */
  private withNodeCache(fn: (cache: NodeCache) => void): void {
    const cache = this.nodeCache();
    if (!cache) return;
    try {
      fn(cache);
    } catch (e) {
      this.cacheBroken(e);
    }
  }

  /** The node cache, when it can be used (files through it or not: it keeps the job's directory). */
  private nodeCache(): NodeCache | undefined {
    const s = this.cacheState;
    if (!s || s.broken) return undefined;
    if (!s.cache) {
      try {
        s.cache = s.access.open();
      } catch (e) {
        this.cacheBroken(e);
        return undefined;
      }
    }
    return s.cache;
  }

  /**
   * A cache that cannot be used is not a reason to fail the job: it reads and writes uncached.
   * The worker process says so once, in its own log and the leader's, at warning level.
   */
  private cacheBroken(e: unknown): void {
    if (this.cacheState) this.cacheState.broken = true;
    if (toldUnusable) return;
    toldUnusable = true;
    const message = `the node cache cannot be used (${errorMessage(e)}); this worker reads and writes files uncached`;
    this.warnings.push(message);
    createLogger('warning').warning(`toil worker: ${message}`);
  }
}

/** Whether this process has said that its node cache cannot be used (it says so once). */
let toldUnusable = false;
