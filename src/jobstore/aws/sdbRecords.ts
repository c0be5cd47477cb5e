/**
 * Versioned records in SimpleDB (`--awsMetadata simpledb`): job records in the domain
 * `<name>--jobs`, shared files (`shared/<name>`) and message claims (`claims/<message>`) in
 * `<name>--files`. One more implementation of {@link VersionedObjects}; the item layout is in
 * `sdbItems.ts`.
 *
 * Protocol:
 * - **Read**: GetAttributes with ConsistentRead (every read here decides something), so a read
 *   sees every write that was acknowledged before it; SimpleDB replaces an item's attributes
 *   atomically, so a reader never sees half of a write.
 * - **Create**: PutAttributes with `Expected v does not exist`; **replace**: with `Expected v =
 *   <the version read>`. A stale writer (its version was replaced meanwhile) fails the check
 *   and loses with CONFLICT; of concurrent writers of one version exactly one passes. Each write
 *   names a fresh nonce as the new version, so there is no A→B→A ambiguity, and a writer whose
 *   request was retried after a lost answer (the first attempt landed, the retry fails the check)
 *   recognises its own nonce in a consistent read and reports success.
 * - **Large records** (more than 250 chunks of 1,024 bytes): the bytes go to S3 first, under a
 *   new key per version (`sdb-records/<jobs|files>/<item>/<nonce>`), then the item is written
 *   with a pointer to it (version `s.<nonce>`). A writer that loses deletes its object; the
 *   winner deletes the object of the version it replaced. A reader that finds the object gone
 *   (superseded between its two reads) reads the item again. An object whose write's outcome is
 *   unknown (the request failed for good after retries) may stay until the store is destroyed.
 * - **Delete**: reads the item, then DeleteAttributes with `Expected v = <what it read>`, then
 *   deletes the S3 object if there is one; a concurrent write makes it start again.
 * - **Unconditional replace** (`put`): read the version, replace it conditionally, again on
 *   conflict, so that an S3 object of the replaced version is always known and deleted.
 */
import { ConflictError, NotFoundError, TransientError } from '../../errors.js';
import type { VersionedObjects } from './conditionalWrites.js';
import type { S3Bucket } from './s3Bucket.js';
import { nonce } from './s3Keys.js';
import { decodeItem, encodeInline, encodePointer, IN_S3, MAX_CHUNKS, quoteLiteral, quoteName, type Decoded } from './sdbItems.js';
import type { SimpleDbClient } from './simpledb/client.js';
import type { Versioned } from '../types.js';

/** The calls this module makes (a SimpleDbClient). */
export type SdbApi = Pick<SimpleDbClient, 'putAttributes' | 'deleteAttributes' | 'getAttributes' | 'selectAll'>;

export interface SdbRecordsOptions {
  sdb: SdbApi;
  domain: string;
  /** Prefix of item names in the domain ('' for the whole domain). */
  prefix: string;
  /** Where records too large for an item go, under `s3Prefix`. */
  bucket: S3Bucket;
  s3Prefix: string;
  /** Most chunk attributes of an inline record (default and at most {@link MAX_CHUNKS}). */
  maxChunks?: number;
}

const MAX_ATTEMPTS = 50;

export class SdbRecords implements VersionedObjects {
  private readonly o: SdbRecordsOptions;
  constructor(o: SdbRecordsOptions) {
    this.o = { ...o, maxChunks: Math.min(o.maxChunks ?? MAX_CHUNKS, MAX_CHUNKS) };
  }

  private item(name: string): string {
    return this.o.prefix + name;
  }

  private objectKey(name: string, version: string): string {
    return `${this.o.s3Prefix}${this.item(name)}/${version.slice(IN_S3.length)}`;
  }

  private async current(name: string, what: string): Promise<Decoded | undefined> {
    const attrs = await this.o.sdb.getAttributes({ domain: this.o.domain, item: this.item(name), consistentRead: true });
    return decodeItem(attrs, what);
  }

  /** Only the current version (a pointer's S3 key follows from it): a small answer. */
  private async currentVersion(name: string): Promise<string | undefined> {
    const attrs = await this.o.sdb.getAttributes({
      domain: this.o.domain,
      item: this.item(name),
      attributeNames: ['v'],
      consistentRead: true,
    });
    return attrs.find((a) => a.name === 'v')?.value;
  }

  async read(name: string): Promise<Versioned<Buffer> | undefined> {
    const what = `${this.o.domain}/${this.item(name)}`;
    for (let attempt = 0; attempt < 20; attempt++) {
      const d = await this.current(name, what);
      if (!d) return undefined;
      if ('data' in d) return { value: d.data, version: d.version };
      const got = await this.o.bucket.getSmall(d.s3Key);
      if (got) return { value: got.body, version: d.version };
      // Superseded and its object removed between the two reads: look again.
    }
    throw new TransientError(`${what} keeps changing`);
  }

  /** The attributes of a new version, its bytes uploaded to S3 first if they do not fit. */
  private async stage(name: string, data: Buffer): Promise<{ version: string; attributes: ReturnType<typeof encodePointer> }> {
    const inline = encodeInline(data, nonce(), this.o.maxChunks);
    if (inline.kind === 'inline') return { version: inline.attributes[0]!.value, attributes: inline.attributes };
    const version = `${IN_S3}${nonce()}`;
    const key = this.objectKey(name, version);
    const r = await this.o.bucket.put(key, data);
    if (!r.ok) throw new TransientError(`writing ${key} was refused`);
    return { version, attributes: encodePointer(version, key) };
  }

  private async dropObject(name: string, version: string | undefined): Promise<void> {
    if (version?.startsWith(IN_S3)) await this.o.bucket.delete(this.objectKey(name, version)).catch(() => {});
  }

  async write(name: string, data: Buffer, expected: string | undefined, what: string): Promise<string> {
    const { version, attributes } = await this.stage(name, data);
    try {
      await this.o.sdb.putAttributes({
        domain: this.o.domain,
        item: this.item(name),
        attributes,
        expected: expected === undefined ? { name: 'v', exists: false } : { name: 'v', value: expected },
      });
    } catch (e) {
      if (!(e instanceof ConflictError || e instanceof NotFoundError)) throw e;
      // A missing domain throws again here; anything else is decided by what is there now.
      const cur = await this.currentVersion(name);
      if (cur === version) return version; // a retry of our own write that had landed
      await this.dropObject(name, version);
      if (expected !== undefined && cur === undefined) throw new NotFoundError(`${what} does not exist`);
      throw new ConflictError(
        expected === undefined ? `${what} already exists` : `${what} was changed by somebody else (version ${expected} is stale)`,
        { version: expected },
      );
    }
    await this.dropObject(name, expected);
    return version;
  }

  async put(name: string, data: Buffer, what: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const cur = await this.currentVersion(name);
      try {
        return await this.write(name, data, cur, what);
      } catch (e) {
        if (!(e instanceof ConflictError || e instanceof NotFoundError) || attempt >= MAX_ATTEMPTS) throw e;
      }
    }
  }

  async delete(name: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const cur = await this.currentVersion(name);
      if (cur === undefined) return;
      try {
        await this.o.sdb.deleteAttributes({ domain: this.o.domain, item: this.item(name), expected: { name: 'v', value: cur } });
      } catch (e) {
        if (!(e instanceof ConflictError || e instanceof NotFoundError) || attempt >= MAX_ATTEMPTS) throw e;
        continue; // written (or deleted) meanwhile: look again
      }
      await this.dropObject(name, cur);
      return;
    }
  }

  async *entries(): AsyncIterable<Versioned<Buffer> & { name: string }> {
    const { domain, prefix } = this.o;
    const where = prefix === '' ? '' : ` where itemName() like ${quoteLiteral(`${prefix}%`)}`;
    // 2,500 items a page, SimpleDB's most (the default is 100); pages also end at 1 MB.
    const expression = `select * from ${quoteName(domain)}${where} limit 2500`;
    const items = this.o.sdb.selectAll({ expression, consistentRead: true });
    for await (const it of items) {
      if (!it.name.startsWith(prefix)) continue;
      const name = it.name.slice(prefix.length);
      const d = decodeItem(it.attributes, `${domain}/${it.name}`);
      if (!d) continue;
      if ('data' in d) {
        yield { name, value: d.data, version: d.version };
        continue;
      }
      const direct = await this.o.bucket.getSmall(d.s3Key);
      const got = direct ? { value: direct.body, version: d.version } : await this.read(name);
      if (got) yield { name, ...got };
    }
  }
}
