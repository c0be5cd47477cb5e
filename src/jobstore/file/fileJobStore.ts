/**
 * The file job store: a directory.
 *
 * ```
 * <root>/toil-jobstore.json      marker (format, creation time)
 * <root>/jobs/<id>/v<N>.json     job records; the highest N is current
 * <root>/shared/<name>/v<N>      shared files, versioned the same way
 * <root>/files/<fid>/<basename>  files
 * <root>/owners/<jobId>/<fid>     the files a job wrote (content: the file id)
 * <root>/logs/<jobId>.log        captured output of a job's latest attempt
 * <root>/messages/<t>-<r>.json   worker → leader messages
 * <root>/tmp/                    partial writes
 * ```
 *
 * A new version is written to tmp/, flushed, then hard-linked to `v<N+1>`: the link either
 * appears complete or fails with EEXIST (somebody else wrote N+1 first), so records are never
 * torn and a stale writer loses. A version's name is never removed while its object lives: once
 * a newer version exists, the old name is replaced by a hard link to the object's empty
 * tombstone (`.gone`), which frees its content but keeps the name taken. Were the name removed,
 * a writer that checked while N was the newest and links late could create `v<N+1>` again,
 * behind newer versions, and be told it won. The highest version is always the current one.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ConflictError, JobStoreError, NotFoundError } from '../../errors.js';
import { JobRecordSchema, type FileID, type JobRecord } from '../../job/types.js';
import {
  checkJobId,
  checkSharedName,
  safeBasename,
  type ChannelMessage,
  type FileSource,
  type JobStore,
  type Versioned,
  type WriteCondition,
} from '../types.js';
import { parseRecord, parseMessage } from '../records.js';
import { removeTree } from './removeTree.js';

const MARKER = 'toil-jobstore.json';
/** In a versioned object's directory: the empty file that retired versions are linked to. */
const TOMBSTONE = '.gone';

function rand(): string {
  return randomBytes(9).toString('base64url').replace(/[-_]/g, 'x');
}

function isCode(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

export interface FileJobStoreOptions {
  /** Flush each record to disk before it becomes visible (default true). */
  fsync?: boolean;
}

export class FileJobStore implements JobStore {
  readonly locator: string;
  private readonly fsync: boolean;

  constructor(
    readonly root: string,
    opts: FileJobStoreOptions = {},
  ) {
    this.locator = `file:${root}`;
    this.fsync = opts.fsync ?? true;
  }

  private p(...parts: string[]): string {
    return path.join(this.root, ...parts);
  }

  async exists(): Promise<boolean> {
    try {
      await fs.access(this.p(MARKER));
      return true;
    } catch {
      return false;
    }
  }

  async create(): Promise<void> {
    try {
      const entries = await fs.readdir(this.root);
      if (entries.includes(MARKER)) {
        throw new JobStoreError(
          'JOBSTORE_EXISTS',
          `job store ${this.locator} already exists (use --restart to resume it, or 'toil clean' to remove it)`,
        );
      }
      if (entries.length > 0) {
        throw new JobStoreError('JOBSTORE_EXISTS', `cannot create job store ${this.locator}: the directory exists and is not empty`);
      }
    } catch (e) {
      if (!isCode(e, 'ENOENT')) throw e;
    }
    await fs.mkdir(this.root, { recursive: true });
    for (const d of ['jobs', 'shared', 'files', 'owners', 'logs', 'messages', 'tmp']) await fs.mkdir(this.p(d), { recursive: true });
    // The marker last: a store is only "there" once it is complete.
    await this.atomicWrite(this.p(MARKER), JSON.stringify({ format: 1, created: new Date().toISOString() }) + '\n');
  }

  async destroy(): Promise<void> {
    if (!(await this.exists())) {
      // Remove nothing that is not ours, unless it is an interrupted creation (empty dirs only).
      try {
        await fs.rmdir(this.root);
      } catch {
        /* not there, or not ours */
      }
      return;
    }
    // Remove the marker first, so a half-destroyed store is not taken for a live one.
    await fs.rm(this.p(MARKER), { force: true });
    await removeTree(this.root);
  }

  private async requireStore(): Promise<void> {
    if (!(await this.exists())) throw new JobStoreError('JOBSTORE_MISSING', `job store ${this.locator} does not exist`);
  }

  // ---- versioned objects (job records, shared files) ------------------------------------

  private async writeTmp(data: string | Uint8Array): Promise<string> {
    const tmp = this.p('tmp', rand());
    const fh = await fs.open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      if (this.fsync) await fh.datasync();
    } finally {
      await fh.close();
    }
    return tmp;
  }

  private async atomicWrite(target: string, data: string | Uint8Array): Promise<void> {
    const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${rand()}`);
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  }

  private async versions(dir: string): Promise<number[]> {
    const names = await fs.readdir(dir);
    const out: number[] = [];
    for (const n of names) {
      const m = /^v(\d+)(\.json)?$/.exec(n);
      if (m) out.push(Number(m[1]));
    }
    return out.sort((a, b) => b - a);
  }

  private vname(dir: string, v: number, ext: string): string {
    return path.join(dir, `v${v}${ext}`);
  }

  /** Reads the current version of a versioned object, or undefined. */
  private async readVersioned(dir: string, ext: string): Promise<Versioned<Buffer> | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      let vs: number[];
      try {
        vs = await this.versions(dir);
      } catch (e) {
        if (isCode(e, 'ENOENT')) return undefined;
        throw e;
      }
      const top = vs[0];
      if (top === undefined) return undefined;
      try {
        const value = await this.readVersion(dir, this.vname(dir, top, ext));
        if (value) return { value, version: String(top) };
      } catch (e) {
        if (!isCode(e, 'ENOENT')) throw e;
      }
      // Replaced between the listing and the read: look again.
    }
    throw new JobStoreError('JOBSTORE', `could not read ${dir}: it keeps changing`, { retryable: true });
  }

  /** The content of one version, or undefined if it has been retired meanwhile. */
  private async readVersion(dir: string, file: string): Promise<Buffer | undefined> {
    const fh = await fs.open(file, 'r');
    try {
      const value = await fh.readFile();
      if (value.length === 0 && (await this.isTombstone(dir, fh))) return undefined;
      return value;
    } finally {
      await fh.close();
    }
  }

  private async isTombstone(dir: string, fh: FileHandle): Promise<boolean> {
    const [mine, gone] = await Promise.all([fh.stat(), fs.stat(path.join(dir, TOMBSTONE)).catch(() => undefined)]);
    return gone !== undefined && mine.ino === gone.ino && mine.dev === gone.dev;
  }

  /**
   * Frees an old version's content and keeps its name taken, so that no late writer can link
   * it again: the name becomes a hard link to the object's tombstone. If the tombstone has as
   * many links as the file system allows, the old version is left as it is.
   */
  private async retire(dir: string, file: string): Promise<void> {
    const gone = path.join(dir, TOMBSTONE);
    const tmp = path.join(dir, `.retire-${rand()}`);
    try {
      await fs.writeFile(gone, '', { flag: 'wx' }).catch((e: unknown) => {
        if (!isCode(e, 'EEXIST')) throw e;
      });
      await fs.link(gone, tmp);
      await fs.rename(tmp, file);
    } catch (e) {
      // ENOENT: the object was deleted meanwhile.
      if (!isCode(e, 'EMLINK') && !isCode(e, 'ENOENT')) throw e;
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /**
   * Writes version `next` of a versioned object. `expected` undefined means "must not exist".
   * Returns the new version.
   */
  private async writeVersioned(
    dir: string,
    ext: string,
    data: string | Uint8Array,
    expected: string | undefined,
    what: string,
  ): Promise<string> {
    const expectedN = expected === undefined ? 0 : Number(expected);
    if (!Number.isInteger(expectedN) || expectedN < 0) throw new ConflictError(`${what}: '${expected}' is not a version of this store`);
    const next = expectedN + 1;
    // A directory we have just made has no versions: no need to look.
    let fresh = false;
    if (expected === undefined) {
      try {
        await fs.mkdir(dir);
        fresh = true;
      } catch (e) {
        if (isCode(e, 'ENOENT')) await fs.mkdir(dir, { recursive: true }).then(() => (fresh = true));
        else if (!isCode(e, 'EEXIST')) throw e;
      }
    }
    // A stale writer would link a version number that was used and removed long ago; the
    // newest version always exists, so compare with it first.
    const before = fresh
      ? []
      : await this.versions(dir).catch((e: unknown) => {
          if (isCode(e, 'ENOENT')) throw new NotFoundError(`${what} does not exist`);
          throw e;
        });
    const current = before[0];
    if (expected === undefined ? current !== undefined : current !== expectedN) {
      if (expected !== undefined && current === undefined) throw new NotFoundError(`${what} does not exist`);
      throw new ConflictError(
        expected === undefined
          ? `${what} already exists`
          : `${what} was changed by somebody else (version ${current} is newer than ${expected})`,
        { version: expected },
      );
    }
    const tmp = await this.writeTmp(data);
    try {
      await fs.link(tmp, this.vname(dir, next, ext));
    } catch (e) {
      if (isCode(e, 'EEXIST')) {
        throw new ConflictError(
          expected === undefined ? `${what} already exists` : `${what} was changed by somebody else (version ${next} exists)`,
          {
            version: expected,
          },
        );
      }
      if (isCode(e, 'ENOENT')) throw new NotFoundError(`${what} does not exist`);
      throw e;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    // The versions below the one replaced were retired when it was written.
    if (current !== undefined) await this.retire(dir, this.vname(dir, current, ext));
    return String(next);
  }

  // ---- jobs ------------------------------------------------------------------------------

  private jobDir(id: string): string {
    checkJobId(id);
    return this.p('jobs', id);
  }

  async createJob(record: JobRecord): Promise<string> {
    const dir = this.jobDir(record.id);
    return this.writeVersioned(dir, '.json', JSON.stringify(record), undefined, `job ${record.id}`);
  }

  async loadJob(id: string): Promise<Versioned<JobRecord>> {
    const got = await this.readVersioned(this.jobDir(id), '.json');
    if (!got) throw new NotFoundError(`job ${id} does not exist in ${this.locator}`, { jobId: id });
    return { value: parseRecord(got.value, `job ${id}`), version: got.version };
  }

  async updateJob(record: JobRecord, expectedVersion: string): Promise<string> {
    JobRecordSchema.parse(record);
    const dir = this.jobDir(record.id);
    return this.writeVersioned(dir, '.json', JSON.stringify(record), expectedVersion, `job ${record.id}`);
  }

  async deleteJob(id: string): Promise<void> {
    await fs.rm(this.jobDir(id), { recursive: true, force: true });
  }

  async jobExists(id: string): Promise<boolean> {
    return (await this.readVersioned(this.jobDir(id), '.json')) !== undefined;
  }

  async *listJobs(): AsyncIterable<Versioned<JobRecord>> {
    await this.requireStore();
    const dir = await fs.opendir(this.p('jobs'));
    for await (const ent of dir) {
      if (!ent.isDirectory()) continue;
      const got = await this.readVersioned(this.p('jobs', ent.name), '.json');
      if (got) yield { value: parseRecord(got.value, `job ${ent.name}`), version: got.version };
    }
  }

  // ---- files -----------------------------------------------------------------------------

  private filePath(id: FileID): string {
    const m = /^([A-Za-z0-9]{6,40})\/([^/\\\0]{1,255})$/.exec(id);
    if (!m || m[2] === '.' || m[2] === '..') throw new NotFoundError(`'${id}' is not a file id of this job store`, { fileId: id });
    return this.p('files', m[1]!, m[2]!);
  }

  async writeFile(source: FileSource, opts: { basename?: string; ownerJobId?: string } = {}): Promise<FileID> {
    const base = safeBasename(opts.basename ?? (typeof source === 'string' ? path.basename(source) : 'data'));
    const fid = `${rand()}/${base}`;
    const target = this.filePath(fid);
    const tmp = this.p('tmp', rand());
    try {
      if (typeof source === 'string') {
        await fs.copyFile(source, tmp);
      } else {
        const input = source instanceof Uint8Array ? Readable.from([source]) : source instanceof Readable ? source : Readable.from(source);
        await pipeline(input, createWriteStream(tmp, { flags: 'wx' }));
      }
      if (this.fsync) {
        const fh = await fs.open(tmp, 'r+');
        await fh.datasync().finally(() => fh.close());
      }
      await fs.mkdir(path.dirname(target));
      await fs.rename(tmp, target);
      if (opts.ownerJobId !== undefined) {
        checkJobId(opts.ownerJobId);
        await fs.mkdir(this.p('owners', opts.ownerJobId), { recursive: true });
        await fs.writeFile(this.p('owners', opts.ownerJobId, fid.split('/')[0]!), fid);
      }
    } catch (e) {
      await fs.rm(tmp, { force: true });
      if (isCode(e, 'ENOENT') && typeof source === 'string') throw new NotFoundError(`cannot store ${source}: no such file`);
      throw e;
    }
    return fid;
  }

  async readFile(id: FileID, localPath: string): Promise<void> {
    try {
      await fs.copyFile(this.filePath(id), localPath);
    } catch (e) {
      if (isCode(e, 'ENOENT') && !(await this.fileExists(id)))
        throw new NotFoundError(`file ${id} does not exist in ${this.locator}`, { fileId: id });
      throw e;
    }
  }

  async readFileStream(id: FileID): Promise<Readable> {
    const p = this.filePath(id);
    const fh = await fs.open(p, 'r').catch((e: unknown) => {
      if (isCode(e, 'ENOENT')) throw new NotFoundError(`file ${id} does not exist in ${this.locator}`, { fileId: id });
      throw e;
    });
    // The stream owns the handle and closes it when done.
    return fh.createReadStream({ autoClose: true }) as unknown as Readable;
  }

  async deleteFile(id: FileID): Promise<void> {
    const p = this.filePath(id);
    await fs.rm(path.dirname(p), { recursive: true, force: true });
  }

  async fileExists(id: FileID): Promise<boolean> {
    try {
      await fs.access(this.filePath(id));
      return true;
    } catch {
      return false;
    }
  }

  async fileSize(id: FileID): Promise<number> {
    try {
      return (await fs.stat(this.filePath(id))).size;
    } catch (e) {
      if (isCode(e, 'ENOENT')) throw new NotFoundError(`file ${id} does not exist in ${this.locator}`, { fileId: id });
      throw e;
    }
  }

  async deleteFilesOf(ownerJobId: string): Promise<number> {
    checkJobId(ownerJobId);
    const dir = this.p('owners', ownerJobId);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (e) {
      if (isCode(e, 'ENOENT')) return 0;
      throw e;
    }
    let n = 0;
    for (const name of names) {
      const fid = (await fs.readFile(path.join(dir, name), 'utf8').catch(() => '')).trim();
      if (fid !== '') {
        if (await this.fileExists(fid)) n++;
        await this.deleteFile(fid);
      }
    }
    await fs.rm(dir, { recursive: true, force: true });
    return n;
  }

  // ---- shared files ------------------------------------------------------------------------

  async writeShared(name: string, data: Uint8Array | string, cond: WriteCondition = {}): Promise<string> {
    checkSharedName(name);
    const dir = this.p('shared', name);
    if (cond.ifAbsent) return this.writeVersioned(dir, '', data, undefined, `shared file ${name}`);
    if (cond.ifVersion !== undefined) return this.writeVersioned(dir, '', data, cond.ifVersion, `shared file ${name}`);
    // Unconditional: write after whatever is there, retrying if we race another writer.
    for (let attempt = 0; ; attempt++) {
      const cur = await this.readVersioned(dir, '');
      try {
        return await this.writeVersioned(dir, '', data, cur?.version, `shared file ${name}`);
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt > 50) throw e;
      }
    }
  }

  async readShared(name: string): Promise<Versioned<Buffer> | undefined> {
    checkSharedName(name);
    return this.readVersioned(this.p('shared', name), '');
  }

  async deleteShared(name: string): Promise<void> {
    checkSharedName(name);
    await fs.rm(this.p('shared', name), { recursive: true, force: true });
  }

  // ---- messages ----------------------------------------------------------------------------

  async sendMessage(msg: ChannelMessage): Promise<void> {
    const name = `${Date.now().toString().padStart(15, '0')}-${process.hrtime.bigint().toString().padStart(20, '0')}-${rand()}.json`;
    const tmp = await this.writeTmp(JSON.stringify(msg));
    await fs.rename(tmp, this.p('messages', name));
  }

  async receiveMessages(): Promise<ChannelMessage[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.p('messages'))).filter((n) => n.endsWith('.json')).sort();
    } catch (e) {
      if (isCode(e, 'ENOENT')) return [];
      throw e;
    }
    const out: ChannelMessage[] = [];
    for (const n of names) {
      // Claim by renaming: exactly one reader's rename succeeds.
      const claimed = this.p('tmp', `claimed-${rand()}`);
      try {
        await fs.rename(this.p('messages', n), claimed);
      } catch (e) {
        if (isCode(e, 'ENOENT')) continue;
        throw e;
      }
      try {
        out.push(parseMessage(await fs.readFile(claimed)));
      } finally {
        await fs.rm(claimed, { force: true });
      }
    }
    return out;
  }

  // ---- logs --------------------------------------------------------------------------------

  async writeJobLog(jobId: string, text: string): Promise<void> {
    checkJobId(jobId);
    const tmp = await this.writeTmp(text);
    await fs.rename(tmp, this.p('logs', `${jobId}.log`));
  }

  async readJobLog(jobId: string): Promise<string | undefined> {
    checkJobId(jobId);
    try {
      return await fs.readFile(this.p('logs', `${jobId}.log`), 'utf8');
    } catch (e) {
      if (isCode(e, 'ENOENT')) return undefined;
      throw e;
    }
  }
}
