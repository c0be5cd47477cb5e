/**
 * The AWS job store: `aws:<region>:<name>` is the S3 bucket `<name>--toil` in that region, on AWS
 * or on any S3-compatible endpoint named by `AWS_ENDPOINT_URL_S3` (see `s3Client.ts` for
 * credentials, endpoints and tuning variables, and docs/aws-jobstore.md for users).
 *
 * Layout of the bucket:
 * ```
 * toil-jobstore.json                 marker: format, creation time, consistency protocol
 * jobs/<jobId>                       job record (conditional-write stores)
 * jobs/<jobId>/v<seq>-<nonce>        job record versions (claim-protocol stores)
 * jobs/<jobId>/c<seq>-<nonce>        claims on the next version (claim-protocol stores)
 * shared/<name>[/v…|/c…]             shared files, versioned like job records (the leader keeps
 *                                    the workflow bundle, its hash and its lease here)
 * files/<random>/<basename>          files; the file id is `<random>.<crc32>/<basename>`;
 *                                    metadata `toil-owner` (the job that wrote it),
 *                                    `toil-part-size`
 * owners/<jobId>/<random>/<basename> empty: the files a job wrote (for deleteFilesOf)
 * logs/<jobId>.log                   captured output of a job's latest attempt
 * messages/<ms>-<seq>-<nonce>.json   worker → leader messages, in sending order
 * message-claims/<message>[/…]       a receiver's claim on a message (exactly-once delivery)
 * probes/<nonce>                     short-lived objects testing conditional writes
 * sdb-records/<jobs|files>/<item>/<n> records too large for a SimpleDB item (SimpleDB stores)
 * ```
 *
 * With `--awsMetadata simpledb` (recorded at creation: marker format 2, which older versions
 * refuse), job records live in the SimpleDB domain `<name>--jobs`, shared files and message
 * claims in `<name>--files` (items `shared/<name>`, `claims/<message>`), versioned with
 * SimpleDB's conditional puts (`sdbRecords.ts`); there are then no `jobs/`, `shared/` or
 * `message-claims/` objects, and the S3 endpoint's conditional writes are not needed. Files,
 * their owner markers, job logs and the messages themselves stay in S3: they are written once
 * under fresh keys (or, for logs, last writer wins) and may be far larger than an item holds.
 * Destroying such a store deletes the domains first, then the marker, then the bucket.
 *
 * Consistency: job records and shared files are versioned objects (`conditionalWrites.ts`).
 * When the store is created the endpoint is probed: if it honours `If-None-Match`/`If-Match`
 * the store uses them (one request per read or write); if not, it says so in a warning and uses
 * the claim protocol instead. The choice is written in the marker; each process that opens a
 * conditional-write store checks once that the endpoint still refuses a conditional write that
 * must fail, and stops with an error rather than silently losing the guarantee.
 *
 * Messages are claimed before they are read: a receiver creates `message-claims/<message>`
 * only-if-absent (a conditional write, or the claim protocol), and only the receiver that
 * created it reads and deletes the message, so each message is returned once.
 */
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CreateBucketCommand, DeleteBucketCommand, HeadBucketCommand, type BucketLocationConstraint } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { mapLimit } from '../../concurrency.js';
import { ConflictError, JobStoreError, NotFoundError, TransientError, UsageError } from '../../errors.js';
import { JobRecordSchema, type FileID, type JobRecord } from '../../job/types.js';
import { createLogger, type Logger } from '../../log.js';
import {
  probeConditionalWrites,
  versionedObjects,
  type ClaimTiming,
  type Consistency,
  type VersionedObjects,
} from './conditionalWrites.js';
import { parseMessage, parseRecord, parseStored } from '../records.js';
import { withoutRequestSignal } from '../requestSignal.js';
import { S3Bucket, isNoSuchBucket } from './s3Bucket.js';
import { loadSseKey, makeS3Client, s3SettingsFromEnv, type S3Settings } from './s3Client.js';
import {
  bucketName,
  nonce,
  fileIdWithCrc,
  fileKey,
  FILES,
  JOBS,
  logKey,
  MARKER_KEY,
  MESSAGE_CLAIMS,
  MESSAGES,
  messageKey,
  newFileName,
  OWNERS,
  parseFileId,
  SDB_RECORDS,
  SHARED,
} from './s3Keys.js';
import { httpStatus, s3ErrorName } from './s3Retry.js';
import { CLAIM_ITEMS, createDomains, deleteDomains, SHARED_ITEMS, storeDomains, type StoreDomains } from './sdbDomains.js';
import { SdbRecords } from './sdbRecords.js';
import { SimpleDbClient } from './simpledb/client.js';
import { downloadObject, uploadObject } from './s3Transfer.js';
import {
  checkJobId,
  checkSharedName,
  type ChannelMessage,
  type FileSource,
  type JobStore,
  type Versioned,
  type WriteCondition,
} from '../types.js';

export interface AwsJobStoreOptions {
  /**
   * A file holding a 32-byte key for server-side encryption with a customer key (SSE-C);
   * default: `TOIL_S3_SSE_KEY_FILE`.
   */
  sseKeyPath?: string;
  /** Overrides of the settings taken from the environment. */
  settings?: Partial<S3Settings>;
  /**
   * How a new store keeps records consistent: probe the endpoint (default, or
   * `TOIL_S3_CONDITIONAL_WRITES=auto`), or force conditional writes / the claim protocol.
   */
  consistency?: 'auto' | Consistency;
  /** Timing of the claim protocol (stores without conditional writes); see conditionalWrites.ts. */
  claimTiming?: ClaimTiming;
  /**
   * Where a new store keeps job records and its own metadata (`--awsMetadata`): S3 (the default)
   * or SimpleDB. An existing store follows its marker; naming the other choice is a UsageError.
   */
  metadata?: AwsMetadata;
  /** SimpleDB settings: the endpoint (default AWS_ENDPOINT_URL_SIMPLEDB, else the region's). */
  simpleDb?: { endpoint?: string; maxChunks?: number };
  logger?: Pick<Logger, 'warning'>;
}

export type AwsMetadata = 's3' | 'simpledb';

/**
 * The marker: format 1 keeps everything in S3; format 2 keeps metadata in SimpleDB (a version
 * that predates format 2 refuses such a store rather than looking for records in S3).
 */
type Marker =
  | { format: 1; created: string; consistency: Consistency; id?: string }
  | { format: 2; created: string; metadata: 'simpledb'; domains: StoreDomains; id?: string };

const MarkerSchema = z.union([
  z.object({
    format: z.literal(1),
    created: z.string(),
    consistency: z.enum(['conditional', 'claims']),
    id: z.string().optional(),
  }),
  z.object({
    format: z.literal(2),
    created: z.string(),
    metadata: z.literal('simpledb'),
    domains: z.object({ jobs: z.string().min(3), files: z.string().min(3) }),
    id: z.string().optional(),
  }),
]);

function parseMarker(body: Buffer, what: string): Marker {
  return parseStored(MarkerSchema, body, `${what}: ${MARKER_KEY} (a toil-ts job store marker)`);
}

function metadataOf(m: Marker): AwsMetadata {
  return m.format === 2 ? 'simpledb' : 's3';
}

function consistencyFromEnv(): 'auto' | Consistency {
  const v = process.env['TOIL_S3_CONDITIONAL_WRITES'];
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'on' || v === 'true') return 'conditional';
  if (v === 'off' || v === 'false') return 'claims';
  throw new JobStoreError('JOBSTORE', `TOIL_S3_CONDITIONAL_WRITES must be auto, on or off, not '${v}'`);
}

interface Opened {
  metadata: AwsMetadata;
  jobs: VersionedObjects;
  shared: VersionedObjects;
  claims: VersionedObjects;
}

export class AwsJobStore implements JobStore {
  readonly locator: string;
  readonly region: string;
  readonly bucketName: string;
  private readonly storeName: string;
  private readonly settings: S3Settings;
  private readonly opts: AwsJobStoreOptions;
  private readonly log: Pick<Logger, 'warning'>;
  private bucketP: Promise<S3Bucket> | undefined;
  private openedP: Promise<Opened> | undefined;

  constructor(loc: { region: string; name: string; text: string }, opts: AwsJobStoreOptions = {}) {
    this.locator = loc.text;
    this.region = loc.region;
    this.bucketName = bucketName(loc.name);
    this.storeName = loc.name;
    this.settings = { ...s3SettingsFromEnv(loc.region), ...opts.settings };
    this.opts = opts;
    this.log = opts.logger ?? createLogger('warning');
  }

  /** The bucket, with the SSE-C key loaded if there is one. */
  private bucket(): Promise<S3Bucket> {
    this.bucketP ??= (async () => {
      // --sseKey, or TOIL_S3_SSE_KEY_FILE: workers inherit the variable (the Kubernetes batch
      // system passes TOIL_S3_* to worker pods), so they use the leader's key file path.
      const keyPath = this.opts.sseKeyPath ?? (process.env['TOIL_S3_SSE_KEY_FILE'] || undefined);
      const sse = keyPath ? await loadSseKey(keyPath) : undefined;
      return new S3Bucket(makeS3Client(this.settings), this.bucketName, {
        sse,
        retry: this.settings.retry,
        what: this.locator,
        ...(this.settings.listPageSize ? { pageSize: this.settings.listPageSize } : {}),
      });
    })();
    this.bucketP.catch(() => (this.bucketP = undefined));
    return this.bucketP;
  }

  private makeOpened(b: S3Bucket, marker: Marker): Opened {
    if (marker.format === 2) {
      const sdb = this.simpleDb();
      const domains = this.domainsIn(marker.domains);
      const records = (domain: string, prefix: string, s3: string) =>
        new SdbRecords({
          sdb,
          domain,
          prefix,
          bucket: b,
          s3Prefix: `${SDB_RECORDS}${s3}/`,
          ...(this.opts.simpleDb?.maxChunks !== undefined ? { maxChunks: this.opts.simpleDb.maxChunks } : {}),
        });
      return {
        metadata: 'simpledb',
        jobs: records(domains.jobs, '', 'jobs'),
        shared: records(domains.files, SHARED_ITEMS, 'files'),
        claims: records(domains.files, CLAIM_ITEMS, 'files'),
      };
    }
    const { consistency } = marker;
    return {
      metadata: 's3',
      jobs: versionedObjects(consistency, b, JOBS, this.opts.claimTiming),
      shared: versionedObjects(consistency, b, SHARED, this.opts.claimTiming),
      claims: versionedObjects(consistency, b, MESSAGE_CLAIMS, this.opts.claimTiming),
    };
  }

  /** The marker's domains, which must be this store's: a marker never sends us to other domains. */
  private domainsIn(named: StoreDomains): StoreDomains {
    const own = storeDomains(this.storeName);
    if (named.jobs !== own.jobs || named.files !== own.files) {
      throw new JobStoreError(
        'JOBSTORE',
        `job store ${this.locator}: ${MARKER_KEY} names SimpleDB domains ${named.jobs} and ${named.files}, not this store's ${own.jobs} and ${own.files}`,
      );
    }
    return own;
  }

  private simpleDb(): SimpleDbClient {
    const endpoint = this.opts.simpleDb?.endpoint;
    return new SimpleDbClient({ region: this.region, ...(endpoint !== undefined ? { endpoint } : {}) });
  }

  /** A flag naming the other choice than the one the store was created with is an error. */
  private checkMetadataChoice(marker: Marker): void {
    const want = this.opts.metadata;
    const have = metadataOf(marker);
    if (want !== undefined && want !== have) {
      throw new UsageError(
        `job store ${this.locator} keeps its metadata in ${have === 's3' ? 'S3' : 'SimpleDB'} (chosen when it was created): --awsMetadata ${want} cannot change that; leave the option out, or use a new job store`,
      );
    }
  }

  /** Reads the marker (once per instance) and checks the endpoint still keeps its promises. */
  private opened(): Promise<Opened> {
    this.openedP ??= (async () => {
      const b = await this.bucket();
      const got = await b.getSmall(MARKER_KEY).catch((e: unknown) => {
        if (e instanceof JobStoreError && e.code === 'JOBSTORE_MISSING') return undefined;
        throw e;
      });
      if (!got)
        throw new JobStoreError(
          'JOBSTORE_MISSING',
          `job store ${this.locator} does not exist (bucket ${this.bucketName} has no ${MARKER_KEY})`,
        );
      const marker = parseMarker(got.body, this.locator);
      this.checkMetadataChoice(marker);
      if (marker.format === 1 && marker.consistency === 'conditional') {
        // The marker exists, so this must be refused. (If it is not, the same bytes are rewritten.)
        const r = await b.put(MARKER_KEY, got.body, { ifNoneMatch: true });
        if (r.ok) {
          throw new JobStoreError(
            'JOBSTORE',
            `job store ${this.locator} was created on an endpoint that honours conditional writes, but ${this.settings.endpoint ?? 'this endpoint'} now ignores them; refusing to continue without the guarantee that stale writers are rejected`,
          );
        }
      }
      return this.makeOpened(b, marker);
    })();
    this.openedP.catch(() => (this.openedP = undefined));
    return this.openedP;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  async exists(): Promise<boolean> {
    const b = await this.bucket();
    try {
      return (await b.head(MARKER_KEY)) !== undefined;
    } catch (e) {
      if (e instanceof JobStoreError && e.code === 'JOBSTORE_MISSING') return false;
      throw e;
    }
  }

  async create(): Promise<void> {
    const b = await this.bucket();
    const exists = new JobStoreError(
      'JOBSTORE_EXISTS',
      `job store ${this.locator} already exists (use --restart to resume it, or 'toil clean' to remove it)`,
    );
    // The SimpleDB client first: a region without SimpleDB is refused before anything is made.
    const sdb = (this.opts.metadata ?? 's3') === 'simpledb' ? this.simpleDb() : undefined;
    const madeBucket = await this.createBucket(b);
    // Also after a successful CreateBucket: us-east-1 answers 200 to the owner of an existing bucket.
    if (await b.head(MARKER_KEY)) throw exists;
    for await (const o of b.list('')) {
      throw new JobStoreError(
        'JOBSTORE_EXISTS',
        `cannot create job store ${this.locator}: bucket ${this.bucketName} exists and is not an empty toil-ts job store (it holds ${o.key})`,
      );
    }
    const marker = sdb ? await this.createDomains(b, { sdb, madeBucket }) : await this.probedMarker(b);
    const body = Buffer.from(JSON.stringify(marker) + '\n');
    let r: Awaited<ReturnType<S3Bucket['put']>>;
    try {
      r = await b.put(MARKER_KEY, body, { ifNoneMatch: true });
    } catch (e) {
      if (marker.format === 2) await this.undoDomains(b, marker.domains, madeBucket);
      throw e;
    }
    // Refused: somebody else's marker — or ours, if a retried request's first attempt landed.
    if (!r.ok && !(await b.getSmall(MARKER_KEY))?.body.equals(body)) throw exists;
    const opened = this.makeOpened(b, marker);
    this.openedP = Promise.resolve(opened);
  }

  /** Creates the bucket, or finds it ours and empty; true if CreateBucket made it. */
  private async createBucket(b: S3Bucket): Promise<boolean> {
    try {
      await b.client.send(
        new CreateBucketCommand({
          Bucket: this.bucketName,
          ...(this.region !== 'us-east-1'
            ? { CreateBucketConfiguration: { LocationConstraint: this.region as BucketLocationConstraint } }
            : {}),
        }),
      );
      return true;
    } catch (e) {
      const name = s3ErrorName(e);
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw b.fail(e, 'creating the bucket');
      // Ours, or somebody else's? Only an empty bucket we can list is ours to use.
      try {
        await b.client.send(new HeadBucketCommand({ Bucket: this.bucketName }));
      } catch (e2) {
        const status = httpStatus(e2);
        if (status === 403 || status === 301) {
          throw new JobStoreError(
            'JOBSTORE_EXISTS',
            `cannot create job store ${this.locator}: bucket ${this.bucketName} belongs to another AWS account (bucket names are global); choose another name`,
          );
        }
        throw b.fail(e2, 'looking at the existing bucket');
      }
      return false;
    }
  }

  /** The marker of an S3-metadata store, after probing the endpoint's conditional writes. */
  private async probedMarker(b: S3Bucket): Promise<Marker> {
    let consistency = this.opts.consistency ?? consistencyFromEnv();
    if (consistency === 'auto') {
      consistency = (await probeConditionalWrites(b)) ? 'conditional' : 'claims';
      if (consistency === 'claims') {
        this.log.warning(
          `S3 endpoint ${this.settings.endpoint ?? `of ${this.region}`} ignores conditional writes (If-None-Match/If-Match): job store ${this.locator} uses the slower claim protocol to keep stale writers out`,
        );
      }
    }
    return { format: 1, created: new Date().toISOString(), consistency, id: nonce() };
  }

  /**
   * The SimpleDB domains of a new store, and its marker. S3 holds no versioned records then, so
   * its conditional writes are not probed. If a domain cannot be made, the bucket goes too (when
   * this call created it), so nothing is left half-created.
   */
  private async createDomains(b: S3Bucket, o: { sdb: SimpleDbClient; madeBucket: boolean }): Promise<Marker> {
    const domains = storeDomains(this.storeName);
    try {
      await createDomains(o.sdb, domains, this.locator);
    } catch (e) {
      if (o.madeBucket) await b.client.send(new DeleteBucketCommand({ Bucket: this.bucketName })).catch(() => {});
      throw e;
    }
    return { format: 2, created: new Date().toISOString(), metadata: 'simpledb', domains, id: nonce() };
  }

  /** After the marker could not be written: the domains (and the bucket, if made here) go again. */
  private async undoDomains(b: S3Bucket, domains: StoreDomains, madeBucket: boolean): Promise<void> {
    const landed = await b.getSmall(MARKER_KEY).catch(() => undefined);
    if (landed) return; // written after all (or another creator's): the domains are in use
    await deleteDomains(this.simpleDb(), [domains.jobs, domains.files]).catch(() => {});
    if (madeBucket) await b.client.send(new DeleteBucketCommand({ Bucket: this.bucketName })).catch(() => {});
  }

  /**
   * The store is gone for everyone once its SimpleDB domains (if any) and then its marker are
   * deleted: those steps carry the caller's request signal (a lease's validity); the emptying
   * and removal of the bucket after them do not stop half-way.
   */
  async destroy(): Promise<void> {
    const b = await this.bucket();
    this.openedP = undefined;
    try {
      await this.destroyDomains(b);
      // The marker first, so a half-destroyed store is not taken for a live one.
      await b.delete(MARKER_KEY);
      await withoutRequestSignal(() => this.removeBucket(b));
    } catch (e) {
      if (e instanceof JobStoreError && e.code === 'JOBSTORE_MISSING') return;
      throw e;
    }
  }

  /** Empties the bucket (objects and unfinished uploads) and deletes it. */
  private async removeBucket(b: S3Bucket): Promise<void> {
    for (let round = 0; round < 10; round++) {
      const keys: string[] = [];
      for await (const o of b.list('')) {
        keys.push(o.key);
        if (keys.length >= 1000) await b.deleteMany(keys.splice(0));
      }
      await b.deleteMany(keys);
      let uploads: Array<{ key: string; uploadId: string }> = [];
      try {
        uploads = await b.listUploads();
      } catch (e) {
        const cause = e instanceof Error ? e.cause : undefined;
        if (!(httpStatus(cause) === 501 || s3ErrorName(cause) === 'NotImplemented')) throw e;
      }
      await mapLimit(uploads, 8, (u) => b.abortUpload(u.key, u.uploadId));
      try {
        await b.client.send(new DeleteBucketCommand({ Bucket: this.bucketName }));
        return;
      } catch (e) {
        if (isNoSuchBucket(e)) return;
        if (s3ErrorName(e) !== 'BucketNotEmpty') throw b.fail(e, 'deleting the bucket');
        // Something was written meanwhile: another round.
      }
    }
    throw new JobStoreError('JOBSTORE', `could not empty bucket ${this.bucketName}: objects keep appearing`);
  }

  /**
   * The SimpleDB domains, before the marker: if this stops half-way, the marker still says
   * where the metadata was, and `toil clean` can finish the job.
   */
  private async destroyDomains(b: S3Bucket): Promise<void> {
    const got = await b.getSmall(MARKER_KEY);
    if (!got) return;
    let marker: Marker;
    try {
      marker = parseMarker(got.body, this.locator);
    } catch {
      return; // not ours to interpret: the bucket is removed as before
    }
    if (marker.format !== 2) return;
    const domains = this.domainsIn(marker.domains);
    await deleteDomains(this.simpleDb(), [domains.jobs, domains.files]);
  }

  // ---- jobs ------------------------------------------------------------------------------------

  async createJob(record: JobRecord): Promise<string> {
    checkJobId(record.id);
    JobRecordSchema.parse(record);
    const { jobs } = await this.opened();
    return jobs.write(record.id, Buffer.from(JSON.stringify(record)), undefined, `job ${record.id}`);
  }

  async loadJob(id: string): Promise<Versioned<JobRecord>> {
    checkJobId(id);
    const { jobs } = await this.opened();
    const got = await jobs.read(id);
    if (!got) throw new NotFoundError(`job ${id} does not exist in ${this.locator}`, { jobId: id });
    return { value: parseRecord(got.value, `job ${id}`), version: got.version };
  }

  async updateJob(record: JobRecord, expectedVersion: string): Promise<string> {
    checkJobId(record.id);
    JobRecordSchema.parse(record);
    const { jobs } = await this.opened();
    return jobs.write(record.id, Buffer.from(JSON.stringify(record)), expectedVersion, `job ${record.id}`);
  }

  async deleteJob(id: string): Promise<void> {
    checkJobId(id);
    const { jobs } = await this.opened();
    await jobs.delete(id);
  }

  async jobExists(id: string): Promise<boolean> {
    checkJobId(id);
    const { jobs } = await this.opened();
    return (await jobs.read(id)) !== undefined;
  }

  async *listJobs(): AsyncIterable<Versioned<JobRecord>> {
    const { jobs } = await this.opened();
    for await (const e of jobs.entries()) yield { value: parseRecord(e.value, `job ${e.name}`), version: e.version };
  }

  // ---- files -----------------------------------------------------------------------------------

  async writeFile(source: FileSource, opts: { basename?: string; ownerJobId?: string } = {}): Promise<FileID> {
    await this.opened();
    const b = await this.bucket();
    const name = newFileName(opts.basename ?? (typeof source === 'string' ? path.basename(source) : 'data'));
    let body: Readable | Buffer;
    if (typeof source === 'string') {
      try {
        const st = await fs.stat(source);
        if (!st.isFile()) throw new JobStoreError('JOBSTORE', `cannot store ${source}: not a regular file`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`cannot store ${source}: no such file`);
        throw e;
      }
      body = createReadStream(source, { highWaterMark: 1024 * 1024 });
    } else if (source instanceof Uint8Array) {
      body = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
    } else if (source instanceof Readable) {
      body = source;
    } else {
      body = Readable.from(source);
    }
    const sent = await uploadObject(b, name.key, body, {
      partSize: this.settings.partSize,
      queueSize: this.settings.queueSize,
      ...(opts.ownerJobId !== undefined ? { metadata: { 'toil-owner': opts.ownerJobId } } : {}),
    });
    if (opts.ownerJobId !== undefined) {
      checkJobId(opts.ownerJobId);
      await b.put(`${OWNERS}${opts.ownerJobId}/${name.random}/${name.base}`, Buffer.alloc(0));
    }
    return fileIdWithCrc(name.random, name.base, sent.crc32);
  }

  async deleteFilesOf(ownerJobId: string): Promise<number> {
    checkJobId(ownerJobId);
    await this.opened();
    const b = await this.bucket();
    const prefix = `${OWNERS}${ownerJobId}/`;
    const markers: string[] = [];
    for await (const o of b.list(prefix)) markers.push(o.key);
    const files = markers.map((k) => `${FILES}${k.slice(prefix.length)}`);
    let n = 0;
    for (const f of files) if ((await b.head(f)) !== undefined) n++;
    await b.deleteMany([...files, ...markers]);
    return n;
  }

  async readFile(id: FileID, localPath: string): Promise<void> {
    const stream = await this.readFileStream(id);
    try {
      await pipeline(stream, createWriteStream(localPath, { highWaterMark: 1024 * 1024 }));
    } catch (e) {
      await fs.rm(localPath, { force: true });
      throw e;
    }
  }

  async readFileStream(id: FileID): Promise<Readable> {
    const { key, crc32 } = parseFileId(id);
    await this.opened();
    const b = await this.bucket();
    return (await downloadObject(b, key, `file ${id}`, crc32 !== undefined ? { crc32 } : {})).stream;
  }

  async deleteFile(id: FileID): Promise<void> {
    const key = fileKey(id);
    await this.opened();
    await (await this.bucket()).delete(key);
  }

  async fileExists(id: FileID): Promise<boolean> {
    let key: string;
    try {
      key = fileKey(id);
    } catch {
      return false;
    }
    await this.opened();
    return (await (await this.bucket()).head(key)) !== undefined;
  }

  async fileSize(id: FileID): Promise<number> {
    const key = fileKey(id);
    await this.opened();
    const h = await (await this.bucket()).head(key);
    if (!h) throw new NotFoundError(`file ${id} does not exist in ${this.locator}`, { fileId: id });
    return h.size;
  }

  // ---- shared files ----------------------------------------------------------------------------

  async writeShared(name: string, data: Uint8Array | string, cond: WriteCondition = {}): Promise<string> {
    checkSharedName(name);
    const { shared } = await this.opened();
    const buf = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const what = `shared file ${name}`;
    if (cond.ifAbsent) return shared.write(name, buf, undefined, what);
    if (cond.ifVersion !== undefined) return shared.write(name, buf, cond.ifVersion, what);
    return shared.put(name, buf, what);
  }

  async readShared(name: string): Promise<Versioned<Buffer> | undefined> {
    checkSharedName(name);
    const { shared } = await this.opened();
    return shared.read(name);
  }

  async deleteShared(name: string): Promise<void> {
    checkSharedName(name);
    const { shared } = await this.opened();
    await shared.delete(name);
  }

  // ---- messages --------------------------------------------------------------------------------

  async sendMessage(msg: ChannelMessage): Promise<void> {
    await this.opened();
    const b = await this.bucket();
    const r = await b.put(messageKey(), Buffer.from(JSON.stringify(msg)));
    if (!r.ok) throw new JobStoreError('JOBSTORE', 'sending a message was refused');
  }

  async receiveMessages(): Promise<ChannelMessage[]> {
    const { claims } = await this.opened();
    const b = await this.bucket();
    const keys: string[] = [];
    for await (const o of b.list(MESSAGES)) if (o.key.endsWith('.json')) keys.push(o.key);
    keys.sort();
    // Claim in a random order, so that concurrent receivers rarely reach for the same message.
    const order = keys.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const got: Array<ChannelMessage | undefined> = new Array<ChannelMessage | undefined>(keys.length);
    await mapLimit(order, 8, async (i): Promise<void> => {
      got[i] = await this.takeMessage(keys[i]!, claims, b);
    });
    return got.filter((m): m is ChannelMessage => m !== undefined);
  }

  /** Claims, reads and deletes one message; undefined if another receiver has it. */
  private async takeMessage(key: string, claims: VersionedObjects, b: S3Bucket): Promise<ChannelMessage | undefined> {
    const name = key.slice(MESSAGES.length);
    try {
      await claims.write(name, Buffer.alloc(0), undefined, `message ${name}`);
    } catch (e) {
      if (e instanceof ConflictError) return undefined; // another receiver has it
      if (e instanceof TransientError && e.context['contention'] === true) return undefined; // left for the next call
      throw e;
    }
    const body = await b.getSmall(key);
    let msg: ChannelMessage | undefined;
    if (body) {
      msg = parseMessage(body.body);
      await b.delete(key);
    }
    await claims.delete(name);
    return msg;
  }

  // ---- logs ------------------------------------------------------------------------------------

  async writeJobLog(jobId: string, text: string): Promise<void> {
    checkJobId(jobId);
    await this.opened();
    const r = await (await this.bucket()).put(logKey(jobId), Buffer.from(text, 'utf8'));
    if (!r.ok) throw new JobStoreError('JOBSTORE', `writing the log of job ${jobId} was refused`);
  }

  async readJobLog(jobId: string): Promise<string | undefined> {
    checkJobId(jobId);
    await this.opened();
    const got = await (await this.bucket()).getSmall(logKey(jobId));
    return got?.body.toString('utf8');
  }
}
