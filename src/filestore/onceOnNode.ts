/**
 * Once per node (`ctx.fileStore.onceOnNode`): a producer that fills a directory (say, pulls a
 * container image) runs once per node and key while concurrent callers wait; every caller
 * gets the directory.
 *
 * Rules:
 * - **Scope.** A key belongs to one job store (the workflows of that store share it), unless
 *   the caller asks for a shared key: one directory for every workflow on the node that uses
 *   the key. Shared keys are stored as bare keys (so workers of older versions, whose keys
 *   were all node-wide, share them too); a job store's are `<locator>\0<key>`.
 * - **Claims.** A `once` row (key, state, owner) claims a producer's run like a `filling`
 *   entry claims a download (`cacheHolders.ts`): a producer that throws or dies frees the
 *   claim, and the next caller runs it again in an emptied directory.
 * - **Integrity of shared directories.** What the producer of a shared key made is recorded
 *   (each file's path, size, time and sha256). Each caller checks the directory against it,
 *   by a stat of each file (and the digest of a file whose time changed): a directory changed
 *   since it was made — by anybody sharing the host path — is made again, and the caller is
 *   told. A job store's own directory is trusted as its workflows left it.
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { TransientError, UsageError } from '../errors.js';
import type { CacheDb } from './cacheDb.js';
import { fileDigest, type CachePaths } from './cacheFiles.js';
import type { ClaimWait } from './cacheHolders.js';

export interface OnceRequest {
  key: string;
  /** The job store whose workflows share the directory; undefined: every workflow on the node. */
  scope: string | undefined;
}

export interface OnceResult {
  dir: string;
  /** What the caller is to log (a shared directory found changed and made again). */
  notes: string[];
}

/** What runOnce needs of the node cache. */
export interface OnceContext {
  db: CacheDb;
  paths: CachePaths;
  /** This process's holder id. */
  me: string;
  claimWait(): ClaimWait;
}

type OnceStep = { kind: 'done' } | { kind: 'check'; manifest: string } | { kind: 'wait'; owner: string } | { kind: 'claim' };

/** Runs `produce(dir)` once per node for the request's key and scope, or waits for its run; gives the directory. */
export async function runOnce(c: OnceContext, req: OnceRequest, produce: (dir: string) => Promise<void>): Promise<OnceResult> {
  if (req.key.includes('\0')) throw new UsageError('onceOnNode: a key must not contain a NUL character');
  const key = req.scope === undefined ? req.key : `${req.scope}\0${req.key}`;
  const dir = c.paths.once(req.key, key);
  const claims = c.claimWait();
  const notes: string[] = [];
  for (;;) {
    const step = c.db.tx(() => onceStep(c, key, dir));
    if (step.kind === 'done') return { dir, notes };
    if (step.kind === 'check') {
      const changed = await changedFile(dir, step.manifest);
      if (changed === undefined) return { dir, notes };
      if (!c.db.tx(() => c.db.reclaimOnce(key, c.me, step.manifest))) continue;
      notes.push(`the shared once-per-node directory of '${req.key}' was changed after it was made (${changed}): made again`);
    }
    if (step.kind === 'wait') {
      if ((await claims.wait(step.owner)) === 'give-up') throw unjudged(req.key, step.owner);
      continue;
    }
    await make(c, { key, dir, shared: req.scope === undefined }, produce);
    return { dir, notes };
  }
}

function onceStep(c: OnceContext, key: string, dir: string): OnceStep {
  const row = c.db.onceRow(key);
  if (row?.state === 'done' && existsSync(dir)) return row.manifest === null ? { kind: 'done' } : { kind: 'check', manifest: row.manifest };
  if (row?.state === 'running') return { kind: 'wait', owner: row.owner };
  c.db.claimOnce(key, c.me, dir);
  return { kind: 'claim' };
}

/** Runs the producer of a claimed key in an emptied directory; records what a shared one made. */
async function make(
  c: OnceContext,
  o: { key: string; dir: string; shared: boolean },
  produce: (dir: string) => Promise<void>,
): Promise<void> {
  await rm(o.dir, { recursive: true, force: true });
  await mkdir(o.dir, { recursive: true });
  let manifest: string | null = null;
  try {
    await produce(o.dir);
    if (o.shared) manifest = JSON.stringify(await manifestOf(o.dir));
  } catch (e) {
    c.db.tx(() => c.db.endOnce(o.key, c.me, { done: false }));
    throw e;
  }
  c.db.tx(() => c.db.endOnce(o.key, c.me, { done: true, manifest }));
}

/** A file of a shared directory as made: its path in the directory, size, time (ns), sha256. */
type ManifestFile = [string, number, string, string];

/** The regular files under `dir` (symbolic links are not followed), with their size and time. */
function filesUnder(dir: string): Map<string, { size: number; mtime: string }> {
  const out = new Map<string, { size: number; mtime: string }>();
  const visit = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = rel === '' ? name : path.join(rel, name);
      const st = lstatSync(path.join(dir, r), { bigint: true });
      if (st.isDirectory()) visit(r);
      else if (st.isFile()) out.set(r, { size: Number(st.size), mtime: st.mtimeNs.toString() });
    }
  };
  visit('');
  return out;
}

async function manifestOf(dir: string): Promise<ManifestFile[]> {
  const out: ManifestFile[] = [];
  for (const [rel, st] of [...filesUnder(dir)].sort(([a], [b]) => (a < b ? -1 : 1))) {
    out.push([rel, st.size, st.mtime, await fileDigest(path.join(dir, rel))]);
  }
  return out;
}

/** The first file of `dir` that is not as the manifest says (added, gone, resized, other bytes); undefined if none. */
async function changedFile(dir: string, manifest: string): Promise<string | undefined> {
  let now: Map<string, { size: number; mtime: string }>;
  try {
    now = filesUnder(dir);
  } catch {
    return '(unreadable)';
  }
  const made = JSON.parse(manifest) as ManifestFile[];
  const added = [...now.keys()].find((rel) => !made.some((m) => m[0] === rel));
  if (added !== undefined) return `${added} added`;
  for (const [rel, size, mtime, digest] of made) {
    const st = now.get(rel);
    if (!st) return `${rel} gone`;
    if (st.size !== size) return `${rel} resized`;
    if (st.mtime !== mtime && (await fileDigest(path.join(dir, rel)).catch(() => '')) !== digest) return `${rel} changed`;
  }
  return undefined;
}

/** A producer's claim given up on: its holder's liveness could not be judged. */
function unjudged(key: string, owner: string): TransientError {
  return new TransientError(
    `gave up waiting for the once-per-node producer of '${key}': it is run by node cache holder ${owner}, whose lock file this process cannot open (another user's?)`,
  );
}
