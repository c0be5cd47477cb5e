/**
 * Versioned, atomically replaced objects on S3 (job records, shared files, message claims), in
 * two flavours chosen once per job store (recorded in its marker object):
 *
 * **conditional** — for endpoints that honour conditional writes (AWS S3 since 2024, MinIO,
 * Ceph, …). A record is one object, `<prefix><name>`. Creating sends `If-None-Match: *`,
 * replacing sends `If-Match: "<etag>"`; the version is the ETag. S3 replaces objects atomically,
 * so readers never see a torn record, and a stale writer's PUT fails with 412. Each body starts
 * with a header line `toil1 <nonce>\n`, so every write has a distinct ETag (no A→B→A
 * ambiguity) and a writer whose request was retried after a lost answer can recognise its own
 * write when the retry reports 412.
 *
 * **claims** — the fallback for endpoints that ignore the conditions (s3rver, several
 * S3-compatible stores). It needs only atomic PUTs of new keys and listings that show every
 * completed PUT (S3's strong read-after-write consistency). Versions are immutable objects
 * `<prefix><name>/v<seq>-<nonce>`; the current one is the highest `<seq>`. To write version
 * `s+1` on top of `s` a writer
 *   1. PUTs a claim `<prefix><name>/c<s+1>-<nonce>` (a new, unique key),
 *   2. LISTs `<prefix><name>/`,
 *   3. gives up with CONFLICT if the newest version is not `s` (a stale writer always loses here),
 *   4. backs off and starts again (new claim) if any other live claim on `s+1` is listed,
 *   5. otherwise PUTs `v<s+1>-<nonce>` and deletes its claim and the older versions.
 * Two writers cannot both pass step 4: each PUT its claim before listing, so the later lister
 * sees the other's claim. Winners keep their claim until the data object exists, and a writer
 * that arrives after that fails step 3. Contending writers all back off with random delays, so
 * one of them soon wins. A claim left by a writer that died between steps 1 and 5 would block the
 * record forever, so claims older than {@link STALE_CLAIM_MS} (by the server's clock, against the
 * writer's own fresh claim) are ignored; a writer that took longer than {@link SLOW_WRITER_MS}
 * between steps 1 and 4 withdraws and retries instead of writing, and the data PUT of step 5 is
 * abandoned if it has not succeeded within half of {@link STALE_CLAIM_MS} of the claim (the
 * writer then reports that the outcome is unknown, and keeps its claim); a write its caller
 * abandons (`requestSignal.ts`) withdraws its claim if it had not sent the data yet, and keeps
 * it otherwise, for the same reason. So a version is only
 * ever written while its writer's claim is live, and nobody ignores a live claim; what is assumed
 * is only that the client's clock and S3's run at about the same rate over those minutes. It
 * costs 3–4 requests per write instead of 1, and a LIST per read.
 */
import { performance } from 'node:perf_hooks';
import { ConflictError, JobStoreError, NotFoundError, TransientError } from '../../errors.js';
import type { Versioned } from '../types.js';
import type { S3Bucket } from './s3Bucket.js';
import { nonce, PROBES } from './s3Keys.js';
import { pause, requestSignal, withoutRequestSignal } from '../requestSignal.js';
import { backoffDelay, httpStatus, s3ErrorName } from './s3Retry.js';

export type Consistency = 'conditional' | 'claims';

export const STALE_CLAIM_MS = 10 * 60_000;
export const SLOW_WRITER_MS = 60_000;
const MAX_CLAIM_ATTEMPTS = 60;
const FETCH_PARALLEL = 16;

export interface VersionedObjects {
  /** The current version, or undefined. */
  read(name: string): Promise<Versioned<Buffer> | undefined>;
  /** Creates (expected undefined) or replaces version `expected`; returns the new version. */
  write(name: string, data: Buffer, expected: string | undefined, what: string): Promise<string>;
  /** Replaces whatever is there. */
  put(name: string, data: Buffer, what: string): Promise<string>;
  delete(name: string): Promise<void>;
  /** Every object's current version, in no particular order. */
  entries(): AsyncIterable<Versioned<Buffer> & { name: string }>;
}

/** Timing of the claim protocol (the defaults are {@link STALE_CLAIM_MS} and {@link SLOW_WRITER_MS}). */
export interface ClaimTiming {
  staleClaimMs?: number;
  slowWriterMs?: number;
}

export function versionedObjects(mode: Consistency, bucket: S3Bucket, prefix: string, timing: ClaimTiming = {}): VersionedObjects {
  return mode === 'conditional' ? new ConditionalObjects(bucket, prefix) : new ClaimedObjects(bucket, prefix, timing);
}

// ---- conditional writes ----------------------------------------------------------------------

const HEADER = /^toil1 ([A-Za-z0-9]{8,64})\n/;

function envelope(n: string, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`toil1 ${n}\n`), data]);
}

function openEnvelope(body: Buffer, key: string): { nonce: string; data: Buffer } {
  const head = body.subarray(0, 80).toString('latin1');
  const m = HEADER.exec(head);
  if (!m) throw new JobStoreError('JOBSTORE', `object ${key} is not a toil-ts record (bad header)`);
  return { nonce: m[1]!, data: body.subarray(m[0].length) };
}

class ConditionalObjects implements VersionedObjects {
  private readonly bucket: S3Bucket;
  private readonly prefix: string;
  constructor(bucket: S3Bucket, prefix: string) {
    this.bucket = bucket;
    this.prefix = prefix;
  }

  async read(name: string): Promise<Versioned<Buffer> | undefined> {
    const key = this.prefix + name;
    const got = await this.bucket.getSmall(key);
    if (!got) return undefined;
    return { value: openEnvelope(got.body, key).data, version: got.etag };
  }

  async write(name: string, data: Buffer, expected: string | undefined, what: string): Promise<string> {
    const key = this.prefix + name;
    const n = nonce();
    const r = await this.bucket.put(key, envelope(n, data), expected === undefined ? { ifNoneMatch: true } : { ifMatch: expected });
    if (r.ok) return r.etag;
    // A retried request whose first attempt succeeded sees its own write as "somebody else's".
    const cur = await this.bucket.getSmall(key);
    if (cur && openEnvelope(cur.body, key).nonce === n) return cur.etag;
    if (expected !== undefined && (r.reason === 'missing' || !cur)) throw new NotFoundError(`${what} does not exist`);
    throw new ConflictError(
      expected === undefined ? `${what} already exists` : `${what} was changed by somebody else (version ${expected} is stale)`,
      {
        version: expected,
      },
    );
  }

  async put(name: string, data: Buffer, what: string): Promise<string> {
    const r = await this.bucket.put(this.prefix + name, envelope(nonce(), data));
    if (!r.ok) throw new JobStoreError('JOBSTORE', `${what}: unconditional write was refused`);
    return r.etag;
  }

  async delete(name: string): Promise<void> {
    await this.bucket.delete(this.prefix + name);
  }

  async *entries(): AsyncIterable<Versioned<Buffer> & { name: string }> {
    let batch: string[] = [];
    const flush = async (): Promise<Array<Versioned<Buffer> & { name: string }>> => {
      const got = await Promise.all(batch.map(async (name) => ({ name, v: await this.read(name) })));
      batch = [];
      return got.filter((g) => g.v !== undefined).map((g) => ({ name: g.name, value: g.v!.value, version: g.v!.version }));
    };
    for await (const o of this.bucket.list(this.prefix)) {
      const name = o.key.slice(this.prefix.length);
      if (name === '' || name.includes('/')) continue;
      batch.push(name);
      if (batch.length >= FETCH_PARALLEL) yield* await flush();
    }
    yield* await flush();
  }
}

// ---- claims (no conditional writes) ------------------------------------------------------------

interface Slot {
  key: string;
  seq: number;
  nonce: string;
  lastModified: number;
}

function pad(seq: number): string {
  return seq.toString().padStart(12, '0');
}

function parseVersion(v: string): { seq: number; nonce: string } | undefined {
  const m = /^(\d{1,12})\.([A-Za-z0-9]{8,64})$/.exec(v);
  return m ? { seq: Number(m[1]), nonce: m[2]! } : undefined;
}

/** One write of the claim protocol: what is written, on top of what, and how far it got. */
interface ClaimedWrite {
  name: string;
  data: Buffer;
  expected: string | undefined;
  what: string;
  /** The sequence number of the version being written. */
  next: number;
  /** This write's nonce, in its claim's key and its version's. */
  me: string;
  /** Whether the data PUT was sent (its outcome may then be unknown). */
  dataSent: boolean;
}

function claimKeyOf(prefix: string, w: ClaimedWrite): string {
  return `${prefix}${w.name}/c${pad(w.next)}-${w.me}`;
}

function top(versions: Slot[]): Slot | undefined {
  let best: Slot | undefined;
  for (const v of versions) if (!best || v.seq > best.seq || (v.seq === best.seq && v.nonce < best.nonce)) best = v;
  return best;
}

class ClaimedObjects implements VersionedObjects {
  private readonly bucket: S3Bucket;
  private readonly prefix: string;
  private readonly staleMs: number;
  private readonly slowMs: number;
  constructor(bucket: S3Bucket, prefix: string, timing: ClaimTiming) {
    this.bucket = bucket;
    this.prefix = prefix;
    this.staleMs = timing.staleClaimMs ?? STALE_CLAIM_MS;
    this.slowMs = Math.min(timing.slowWriterMs ?? SLOW_WRITER_MS, this.staleMs / 2);
  }

  private parseKey(key: string): { name: string; kind: 'v' | 'c'; slot: Slot } | undefined {
    const rest = key.slice(this.prefix.length);
    const m = /^(.+)\/([vc])(\d{12})-([A-Za-z0-9]{8,64})$/.exec(rest);
    if (!m) return undefined;
    return { name: m[1]!, kind: m[2] as 'v' | 'c', slot: { key, seq: Number(m[3]), nonce: m[4]!, lastModified: 0 } };
  }

  private async scan(name: string): Promise<{ versions: Slot[]; claims: Slot[] }> {
    const versions: Slot[] = [];
    const claims: Slot[] = [];
    for await (const o of this.bucket.list(`${this.prefix}${name}/`)) {
      const p = this.parseKey(o.key);
      if (!p || p.name !== name) continue;
      p.slot.lastModified = o.lastModified.getTime();
      (p.kind === 'v' ? versions : claims).push(p.slot);
    }
    return { versions, claims };
  }

  async read(name: string): Promise<Versioned<Buffer> | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const cur = top((await this.scan(name)).versions);
      if (!cur) return undefined;
      const got = await this.bucket.getSmall(cur.key);
      if (got) return { value: got.body, version: `${cur.seq}.${cur.nonce}` };
      // Superseded and removed between the listing and the read: look again.
    }
    throw new TransientError(`${this.prefix}${name} keeps changing`);
  }

  async write(name: string, data: Buffer, expected: string | undefined, what: string): Promise<string> {
    let next = 1;
    if (expected !== undefined) {
      const p = parseVersion(expected);
      if (!p) throw new ConflictError(`${what}: '${expected}' is not a version of this store`, { version: expected });
      next = p.seq + 1;
    }
    const w: ClaimedWrite = { name, data, expected, what, next, me: nonce(), dataSent: false };
    try {
      for (let attempt = 1; ; attempt++) {
        const written = await this.tryOnce(w);
        if (written !== undefined) return written;
        if (attempt >= MAX_CLAIM_ATTEMPTS) {
          throw new TransientError(`${what}: too much contention (${attempt} attempts to write version ${next})`, {
            context: { contention: true },
          });
        }
        await pause(20 + backoffDelay(attempt, { baseDelayMs: 20, maxDelayMs: 1000 }), `${what}: waiting for a rival writer`);
      }
    } catch (e) {
      // Abandoned by the caller before the data was sent: the claim goes, so that it holds up
      // nobody (our own next attempt included) until it is stale. Once the data was sent the
      // outcome is unknown and the claim stays, as below.
      if (requestSignal()?.aborted && !w.dataSent) {
        await withoutRequestSignal(() => this.bucket.delete(claimKeyOf(this.prefix, w))).catch(() => {});
      }
      throw e;
    }
  }

  /** One round of the protocol: the new version, or undefined when a rival claim makes us back off. */
  private async tryOnce(w: ClaimedWrite): Promise<string | undefined> {
    const { name, data, expected, what, next, me } = w;
    const base = `${this.prefix}${name}/`;
    const claimKey = claimKeyOf(this.prefix, w);
    const t0 = performance.now();
    const claimed = await this.bucket.put(claimKey, Buffer.alloc(0));
    if (!claimed.ok) throw new JobStoreError('JOBSTORE', `${what}: could not write claim ${claimKey}`);
    const { versions, claims } = await this.scan(name);
    const cur = top(versions);
    const curVersion = cur ? `${cur.seq}.${cur.nonce}` : undefined;
    if (expected === undefined ? cur !== undefined : curVersion !== expected) {
      await this.bucket.delete(claimKey);
      if (expected !== undefined && cur === undefined) throw new NotFoundError(`${what} does not exist`);
      throw new ConflictError(
        expected === undefined ? `${what} already exists` : `${what} was changed by somebody else (version ${expected} is stale)`,
        {
          version: expected,
        },
      );
    }
    const mine = claims.find((c) => c.key === claimKey);
    const rivals = mine
      ? claims.filter((c) => c.seq === next && c.key !== claimKey && c.lastModified >= mine.lastModified - this.staleMs)
      : [];
    const slow = performance.now() - t0 > this.slowMs;
    if (!mine || rivals.length > 0 || slow) {
      await this.bucket.delete(claimKey);
      return undefined;
    }
    // The data PUT must land while the claim is live: abandon it (the outcome is then
    // unknown, and the claim is kept, so nobody else writes this version before it is stale).
    const left = this.staleMs / 2 - (performance.now() - t0);
    let wrote;
    try {
      w.dataSent = true;
      wrote = await this.bucket.put(`${base}v${pad(next)}-${me}`, data, { deadlineMs: left });
    } catch (e) {
      if (e instanceof TransientError && e.context['deadline'] === true) {
        throw new TransientError(`${what}: writing version ${next} took too long; read the record again to see whether it was written`, {
          cause: e,
        });
      }
      throw e;
    }
    if (!wrote.ok) throw new JobStoreError('JOBSTORE', `${what}: could not write version ${next}`);
    const old = [...versions.filter((v) => v.seq < next), ...claims.filter((c) => c.seq < next), { key: claimKey }].map((s) => s.key);
    await this.bucket.deleteMany(old).catch(() => {
      /* leftovers are ignored by readers and removed by the next write */
    });
    return `${next}.${me}`;
  }

  async put(name: string, data: Buffer, what: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const cur = await this.read(name);
      try {
        return await this.write(name, data, cur?.version, what);
      } catch (e) {
        if (!(e instanceof ConflictError || e instanceof NotFoundError) || attempt >= 50) throw e;
      }
    }
  }

  async delete(name: string): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const keys: string[] = [];
      for await (const o of this.bucket.list(`${this.prefix}${name}/`)) keys.push(o.key);
      if (keys.length === 0) return;
      await this.bucket.deleteMany(keys);
    }
  }

  /**
   * Every object, read as the listing streams: the keys of one name are consecutive in key order
   * (`<name>/…`, and a name has no `/`), so each name's newest version is known when the next
   * name begins, and a batch of them is read then.
   */
  async *entries(): AsyncIterable<Versioned<Buffer> & { name: string }> {
    let batch: Array<[string, Slot]> = [];
    let cur: [string, Slot] | undefined;
    for await (const o of this.bucket.list(this.prefix)) {
      const p = this.parseKey(o.key);
      if (!p || p.kind !== 'v') continue;
      if (cur?.[0] !== p.name) {
        if (cur) batch.push(cur);
        cur = [p.name, p.slot];
        if (batch.length >= FETCH_PARALLEL) {
          yield* await this.readTops(batch);
          batch = [];
        }
      } else if (p.slot.seq > cur[1].seq || (p.slot.seq === cur[1].seq && p.slot.nonce < cur[1].nonce)) cur[1] = p.slot;
    }
    if (cur) batch.push(cur);
    yield* await this.readTops(batch);
  }

  private async readTops(tops: Array<[string, Slot]>): Promise<Array<Versioned<Buffer> & { name: string }>> {
    const got = await Promise.all(
      tops.map(async ([name, slot]) => {
        const direct = await this.bucket.getSmall(slot.key);
        if (direct) return { name, value: direct.body, version: `${slot.seq}.${slot.nonce}` };
        const v = await this.read(name);
        return v ? { name, ...v } : undefined;
      }),
    );
    return got.filter((g) => g !== undefined);
  }
}

// ---- probing -----------------------------------------------------------------------------------

/**
 * Whether the endpoint honours conditional writes: a conditional PUT that must fail (the key
 * exists) is sent, and must be refused with 412; so must an `If-Match` with a wrong ETag.
 */
export async function probeConditionalWrites(bucket: S3Bucket): Promise<boolean> {
  const key = `${PROBES}${nonce()}`;
  try {
    const first = await bucket.put(key, Buffer.from('probe 1'));
    if (!first.ok) return false;
    const again = await bucket.put(key, Buffer.from('probe 2'), { ifNoneMatch: true });
    if (again.ok) return false;
    const wrong = await bucket.put(key, Buffer.from('probe 3'), { ifMatch: '0123456789abcdef0123456789abcdef' });
    return !wrong.ok;
  } catch (e) {
    const cause = e instanceof Error && e.cause !== undefined ? e.cause : e;
    if (httpStatus(cause) === 501 || s3ErrorName(cause) === 'NotImplemented') return false;
    throw e;
  } finally {
    await bucket.delete(key).catch(() => {});
  }
}
