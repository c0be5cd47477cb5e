/**
 * The node cache's files: where each kind lives in the cache directory, how a download is
 * settled before it is published, and how a cached file is placed where a job reads it.
 *
 * Layout: `cache.db` (the state, `cacheDb.ts`), `files/<key>.<nonce>` (complete entries,
 * read-only), `tmp/` (downloads in progress, files about to be admitted), `holders/<id>.lock`
 * (one per live process), `once/<name>` (directories made by once-per-node producers). The
 * jobs' own directories are beside the cache directory (`<workDir>/toil-<workflow>/job-…`):
 * the cache knows them by their path relative to its parent, the work directory, which is
 * the same in every pod of a node whatever the host path's name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { chmod, copyFile, link, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { TransientError } from '../errors.js';

export class CachePaths {
  constructor(readonly dir: string) {}

  /** Creates the cache's directories. */
  make(): void {
    for (const d of ['files', 'tmp', 'holders', 'once']) mkdirSync(path.join(this.dir, d), { recursive: true });
  }

  get db(): string {
    return path.join(this.dir, 'cache.db');
  }

  file(name: string): string {
    return path.join(this.dir, 'files', name);
  }

  part(name: string): string {
    return path.join(this.dir, 'tmp', `${name}.part`);
  }

  /** Both places an entry's file may be (published, or still being downloaded). */
  entryFiles(names: readonly string[]): string[] {
    return names.flatMap((n) => [this.file(n), this.part(n)]);
  }

  /** A fresh path in `tmp/` for a file about to be admitted. */
  temp(): string {
    return path.join(this.dir, 'tmp', `w-${randomBytes(8).toString('hex')}.part`);
  }

  /** The work directory: the cache directory's parent, where the jobs' directories are. */
  get base(): string {
    return path.dirname(path.resolve(this.dir));
  }

  /** A job's directory relative to the work directory; undefined if it is not inside it (or is the cache). */
  jobDirName(abs: string): string | undefined {
    const rel = path.relative(this.base, path.resolve(abs));
    const inside = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
    const cache = path.relative(path.resolve(this.dir), path.resolve(abs));
    return inside && (cache.startsWith('..') || path.isAbsolute(cache)) ? rel : undefined;
  }

  /** A job's directory from its name; undefined for a name that would lead out of the work directory. */
  jobDir(rel: string): string | undefined {
    const abs = path.resolve(this.base, rel);
    return this.jobDirName(abs) === undefined ? undefined : abs;
  }

  lock(holder: string): string {
    return path.join(this.dir, 'holders', `${holder}.lock`);
  }

  /** The directory of a once-per-node key: readable (from `name`), and unique by the hash of `key`. */
  once(name: string, key = name): string {
    const readable = name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60);
    return path.join(this.dir, 'once', `${readable}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`);
  }
}

/** What a complete file is sealed with when it enters the cache: the sha256 of its bytes and its modification time (ns). */
export interface Sealed {
  digest: string;
  mtime: string;
}

/** A new entry's file name: its key and a nonce (a claim taken over never writes the loser's file). */
export function entryFileName(key: string): string {
  return `${key}.${randomBytes(4).toString('hex')}`;
}

/**
 * Makes a complete file fit to publish: it has the expected size (when one is given), is on
 * disk and read-only; returns the sha256 of its bytes and its modification time.
 */
export async function settle(file: string, size?: number): Promise<Sealed> {
  const fh = await open(file, 'r');
  let digest: string;
  try {
    const got = (await fh.stat()).size;
    if (size !== undefined && got !== size) throw new TransientError(`downloaded ${got} bytes where the job store has ${size}`);
    digest = await sha256(fh.createReadStream({ autoClose: false }));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(file, 0o444);
  return { digest, mtime: (await stat(file, { bigint: true })).mtimeNs.toString() };
}

/** The sha256 (hex) of a file's bytes. */
export function fileDigest(file: string): Promise<string> {
  return sha256(createReadStream(file));
}

async function sha256(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}

/** A file's size and modification time (ns) now, or undefined if it is not there. */
export function lookAt(file: string): { size: number; mtime: string } | undefined {
  try {
    const st = statSync(file, { bigint: true });
    return { size: Number(st.size), mtime: st.mtimeNs.toString() };
  } catch {
    return undefined;
  }
}

/**
 * Places a cache file at `dest`: a hard link (read-only use), or a copy on request, across file
 * systems (EXDEV), and where the kernel refuses the link (EPERM: with fs.protected_hardlinks=1
 * a file of another user that one cannot write, or a file system without hard links).
 */
export async function placeFile(source: string, dest: string, opts: { copy: boolean }): Promise<'link' | 'copy'> {
  const temp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  let how: 'link' | 'copy' = 'copy';
  if (!opts.copy) {
    try {
      await link(source, temp);
      how = 'link';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM') throw e;
    }
  }
  if (how === 'copy') {
    await copyFile(source, temp);
    await chmod(temp, 0o644);
  }
  await rename(temp, dest).catch(async (e: unknown) => {
    await unlink(temp).catch(() => undefined);
    throw e;
  });
  return how;
}

/** Removes a job's directory tree; nothing if it cannot. */
export function removeTree(dir: string | undefined): void {
  if (dir === undefined) return;
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // Not ours to remove (another user's), or already going: the next sweep tries again.
  }
}

/**
 * Bytes on disk (allocated blocks) of everything under `roots` on the file system of `dev`,
 * each inode counted once (a cached file linked into a job's directory is one file); what
 * cannot be read counts nothing.
 */
export function diskUsage(roots: readonly string[], dev: number): number {
  const seen = new Set<number>();
  let bytes = 0;
  const visit = (p: string): void => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    if (st.dev !== dev || seen.has(st.ino)) return;
    seen.add(st.ino);
    bytes += st.blocks * 512;
    if (!st.isDirectory()) return;
    let names: string[] = [];
    try {
      names = readdirSync(p);
    } catch {
      // unreadable: counted as nothing
    }
    for (const n of names) visit(path.join(p, n));
  };
  for (const r of roots) visit(r);
  return bytes;
}

/** Removes files that may already be gone. */
export function removeFiles(files: readonly string[]): void {
  for (const f of files) {
    try {
      unlinkSync(f);
    } catch {
      // already gone
    }
  }
}
