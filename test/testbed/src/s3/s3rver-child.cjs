'use strict';
/**
 * The test S3 server, run in its own process by `server.ts` (node --openssl-legacy-provider:
 * s3rver 3.7.1's ListObjectsV2 continuation tokens use DES).
 *
 * s3rver 3.7.1 on 127.0.0.1 with a middleware in front of it that adds what the job store relies
 * on and s3rver lacks, the way AWS S3 does it:
 * - conditional writes (when enabled): `If-None-Match: *` on an existing key → 412
 *   PreconditionFailed; `If-Match` with another ETag → 412; `If-Match` on a missing key → 404
 *   NoSuchKey; for PutObject and CompleteMultipartUpload;
 * - atomic objects: requests on one key are serialised, so a reader never sees a half-written
 *   object; an object's bytes go to a file of their own, renamed into place once all are on disk
 *   (s3rver writes in place and answers before its write has finished), and a request's lock
 *   outlives a client that went away in the middle of a write (S3 then keeps the old object or
 *   the whole new one);
 * - a part whose client went away in the middle of it fails and is not kept (s3rver's UploadPart
 *   pipes the request without listening for its end, and waited for ever, holding the upload's
 *   lock: aborting that upload then never answered);
 * - AbortMultipartUpload (s3rver answers 405), ListMultipartUploads (501), NoSuchUpload for parts
 *   and completions of unknown uploads, and idempotent CompleteMultipartUpload (a retried
 *   completion of a finished upload answers as the first one did);
 * - fault injection: a fraction of requests answered 503 SlowDown, a fraction of connections cut
 *   (in the middle of a request's body — or before handling a request without one —, after it is
 *   handled but before the answer, or in the middle of a GET's body);
 * - request counters by operation and by kind of credentials;
 * - authentication as S3 does it (`credentials.ts`, `sigv4.ts`, loaded as TypeScript): Signature
 *   Version 4 requests, header-signed or presigned, are checked here — with s3rver's static key
 *   or with temporary credentials from the test STS whose key is in TEST_S3_STS_KEY — and
 *   refused with S3's errors; a request checked here reaches s3rver without its authorization
 *   (s3rver's own check of Version 4 only looks the key up), as s3rver's account. Anonymous and
 *   Version 2 requests go to s3rver as before.
 *
 * Control: IPC messages from the parent ({type: 'faults' | 'counts' | 'resetCounts'}).
 */
const fs = require('node:fs');
const path = require('node:path');
const { Transform } = require('node:stream');
const { pipeline } = require('node:stream/promises');
const crypto = require('node:crypto');
const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const directory = process.env.TEST_S3_DIR;
const conditionalWrites = process.env.TEST_S3_CONDITIONAL === '1';
if (!directory) throw new Error('TEST_S3_DIR is not set');

let faults = { slowDown: 0, cut: 0, cutGetBody: 0, hangPutMatch: '', hangMs: 0 };
const newCounts = () => ({
  total: 0,
  byOp: {},
  gets: {},
  faults: { slowDown: 0, cut: 0 },
  sseC: { with: 0, without: 0 },
  auth: { static: 0, temporary: 0, signatureV2: 0, anonymous: 0, refused: {} },
});
let counts = newCounts();
const completed = new Map(); // uploadId → { bucket, key, etag }

const app = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  resetOnClose: false,
});

// ---- whole objects: written beside their place, renamed into it when all bytes are on disk ----
let tmpSeq = 0;
FilesystemStore.prototype.putObject = async function putWholeObject(object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const source = Buffer.isBuffer(object.content) ? [object.content] : object.content;
  const { size, md5 } = await writeMeasured(source, objectPath);
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size, md5 };
};

/**
 * Writes a stream to a file beside `target`, renamed into place once all its bytes are on disk;
 * a stream that errors or ends early (its client went away) leaves nothing and rejects.
 */
async function writeMeasured(source, target) {
  const tmp = `${target}.${process.pid}-${++tmpSeq}.partial`;
  const md5 = crypto.createHash('md5');
  let size = 0;
  const measure = new Transform({
    transform(chunk, encoding, callback) {
      md5.update(chunk, encoding);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, measure, fs.createWriteStream(tmp));
    await fs.promises.rename(tmp, target);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  return { size, md5: md5.digest('hex') };
}

// ---- parts: the same, and a part whose request ends early fails (s3rver's own never settles) ----
FilesystemStore.prototype.putPart = async function putWholePart(bucket, uploadId, partNumber, content) {
  const partPath = path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId, String(partNumber));
  await fs.promises.mkdir(path.dirname(partPath), { recursive: true });
  const { size, md5 } = await writeMeasured(content, partPath);
  await fs.promises.writeFile(`${partPath}.md5`, md5);
  return { size, md5 };
};

/** The keys requests may be signed with: s3rver's static one, and the sessions of a trusted STS. */
const keyRing = {
  staticKeys: DUMMY_ACCOUNT.accessKeys,
  ...(process.env.TEST_S3_STS_KEY ? { sessionKey: Buffer.from(process.env.TEST_S3_STS_KEY, 'base64') } : {}),
};
let credentials; // credentials.ts, loaded before the server listens

/**
 * Checks the request's credentials; answers a refused one with S3's error and returns false. A
 * request verified here goes on without its authorization, as s3rver's account.
 */
function authenticated(ctx) {
  const outcome = credentials.authenticate({ method: ctx.method, url: ctx.req.url, rawHeaders: ctx.req.rawHeaders }, keyRing, Date.now());
  if (outcome.kind === 'refused') {
    const { status, code, message, details } = outcome.error;
    counts.auth.refused[code] = (counts.auth.refused[code] ?? 0) + 1;
    const extra = Object.entries(details ?? {})
      .map(([k, v]) => `<${k}>${escapeXml(v)}</${k}>`)
      .join('');
    xmlError(ctx, status, code, escapeXml(message), extra);
    return false;
  }
  if (outcome.kind !== 'verified') {
    counts.auth[outcome.kind]++;
    return true;
  }
  counts.auth[outcome.temporary ? 'temporary' : 'static']++;
  if (outcome.form === 'header') delete ctx.req.headers.authorization;
  else ctx.url = credentials.withoutQueryAuth(ctx.url);
  ctx.state.account = DUMMY_ACCOUNT;
  return true;
}

function xmlError(ctx, status, code, message, extra = '') {
  ctx.status = status;
  ctx.type = 'application/xml';
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>${extra}<RequestId>test</RequestId></Error>`;
}

function escapeXml(s) {
  return String(s).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

function parsePath(p) {
  const m = /^\/([^/]+)(?:\/(.*))?$/.exec(p);
  if (!m) return { bucket: undefined, key: undefined };
  return { bucket: decodeURIComponent(m[1]), key: m[2] === undefined || m[2] === '' ? undefined : decodeURIComponent(m[2]) };
}

function opName(ctx, key) {
  const q = ctx.query;
  if (!key) {
    if ('uploads' in q) return 'ListMultipartUploads';
    if ('delete' in q) return 'DeleteObjects';
    if (ctx.method === 'GET') return 'ListObjects';
    return `${ctx.method}Bucket`;
  }
  if ('uploadId' in q) {
    if (ctx.method === 'PUT') return 'UploadPart';
    if (ctx.method === 'POST') return 'CompleteMultipartUpload';
    if (ctx.method === 'DELETE') return 'AbortMultipartUpload';
  }
  if ('uploads' in q) return 'CreateMultipartUpload';
  if ('tagging' in q) return `${ctx.method}ObjectTagging`;
  return `${ctx.method}Object`;
}

// ---- locks: exclusive per object key; shared/exclusive per multipart upload ------------------
const locks = new Map();
function lock(id, mode = 'x') {
  let l = locks.get(id);
  if (!l) {
    l = { readers: 0, writer: false, queue: [] };
    locks.set(id, l);
  }
  const grant = () => {
    if (mode === 'x' ? !l.writer && l.readers === 0 : !l.writer) {
      if (mode === 'x') l.writer = true;
      else l.readers++;
      return true;
    }
    return false;
  };
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    if (mode === 'x') l.writer = false;
    else l.readers--;
    while (l.queue.length) {
      const next = l.queue[0];
      if (!next()) break;
      l.queue.shift();
    }
    if (!l.writer && l.readers === 0 && l.queue.length === 0) locks.delete(id);
  };
  if (l.queue.length === 0 && grant()) return Promise.resolve(release);
  return new Promise((resolve) => {
    l.queue.push(() => {
      if (!grant()) return false;
      resolve(release);
      return true;
    });
  });
}

function uploadsDir(bucket) {
  return app.store.getResourcePath(bucket, undefined, 'uploads');
}
function uploadKnown(bucket, uploadId) {
  if (!/^[0-9a-f]{32}$/.test(uploadId)) return false;
  return fs.existsSync(path.join(uploadsDir(bucket), uploadId, 'key'));
}

async function currentEtag(bucket, key) {
  if (!(await app.store.existsObject(bucket, key))) return undefined;
  try {
    const md = await app.store.getMetadata(bucket, key);
    return String(md.etag).replace(/"/g, '');
  } catch (e) {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  }
}

function cutSocket(ctx) {
  ctx.respond = false;
  counts.faults.cut++;
  ctx.req.socket.destroy();
}

app.middleware.unshift(async function testS3(ctx, next) {
  const { bucket, key } = parsePath(ctx.path);
  const op = opName(ctx, key);
  counts.total++;
  counts.byOp[op] = (counts.byOp[op] ?? 0) + 1;
  if (op === 'GETObject') counts.gets[`${bucket}/${key}`] = (counts.gets[`${bucket}/${key}`] ?? 0) + 1;
  // Requests that read or write object content: do they carry an SSE-C key? (s3rver ignores it.)
  if (['GETObject', 'HEADObject', 'PUTObject', 'UploadPart', 'CreateMultipartUpload'].includes(op)) {
    if (ctx.get('x-amz-server-side-encryption-customer-algorithm') === 'AES256' && ctx.get('x-amz-server-side-encryption-customer-key-md5'))
      counts.sseC.with++;
    else counts.sseC.without++;
  }
  if (!authenticated(ctx)) return;

  // ---- faults -------------------------------------------------------------------------------
  if (faults.slowDown > 0 && Math.random() < faults.slowDown) {
    counts.faults.slowDown++;
    return xmlError(ctx, 503, 'SlowDown', 'Please reduce your request rate.');
  }
  // A black hole: PUTs of matching keys are held, then dropped unprocessed.
  if (faults.hangPutMatch && ctx.method === 'PUT' && key && key.includes(faults.hangPutMatch)) {
    ctx.respond = false;
    await new Promise((resolve) => {
      const t = setTimeout(resolve, faults.hangMs);
      ctx.req.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
    ctx.req.socket.destroy();
    return;
  }
  let cutMode;
  if (faults.cut > 0 && Math.random() < faults.cut) cutMode = Math.random() < 0.5 ? 'before' : 'after';
  if (cutMode === 'before') {
    // With a request body: cut once part of it has arrived (mid-upload); without: at once.
    if (Number(ctx.get('content-length')) > 0) {
      ctx.respond = false;
      counts.faults.cut++;
      await new Promise((resolve) => {
        ctx.req.once('data', () => {
          ctx.req.socket.destroy();
          resolve();
        });
        ctx.req.once('close', resolve);
        ctx.req.once('error', resolve);
      });
      return;
    }
    return cutSocket(ctx);
  }

  const q = ctx.query;
  // ---- multipart bookkeeping s3rver lacks ---------------------------------------------------
  if (bucket && !key && ctx.method === 'GET' && 'uploads' in q) {
    const dir = uploadsDir(bucket);
    if (!fs.existsSync(app.store.getBucketPath(bucket))) return xmlError(ctx, 404, 'NoSuchBucket', 'The specified bucket does not exist');
    const prefix = typeof q.prefix === 'string' ? q.prefix : '';
    const entries = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
    const uploads = [];
    for (const id of entries) {
      const kf = path.join(dir, id, 'key');
      if (!fs.existsSync(kf)) continue;
      const k = fs.readFileSync(kf, 'utf8');
      if (!k.startsWith(prefix)) continue;
      uploads.push(
        `<Upload><Key>${escapeXml(k)}</Key><UploadId>${id}</UploadId><Initiated>${fs.statSync(kf).mtime.toISOString()}</Initiated><StorageClass>STANDARD</StorageClass></Upload>`,
      );
    }
    ctx.type = 'application/xml';
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${escapeXml(bucket)}</Bucket><Prefix>${escapeXml(prefix)}</Prefix><MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`;
    return;
  }
  const releases = [];
  const releaseAll = () => {
    for (const r of releases.splice(0)) r();
  };
  // The locks are held while the request is handled, even if its client has gone (a write
  // under way finishes first); a streamed GET holds them until its answer is sent or its
  // connection is gone.
  let handled = false;
  ctx.res.once('close', () => {
    if (handled) releaseAll();
  });
  try {
    return await handle(ctx, next, { bucket, key, q, cutMode, releases });
  } finally {
    handled = true;
    const body = ctx.body;
    const streaming = ctx.method === 'GET' && body && typeof body.pipe === 'function';
    if (!streaming || ctx.res.writableFinished || ctx.res.destroyed) releaseAll();
  }
});

async function handle(ctx, next, { bucket, key, q, cutMode, releases }) {
  if (bucket && key && 'uploadId' in q) {
    const uploadId = String(q.uploadId);
    releases.push(await lock(`upload:${uploadId}`, ctx.method === 'PUT' ? 's' : 'x'));
    if (ctx.method === 'DELETE') {
      if (!uploadKnown(bucket, uploadId)) return xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
      fs.rmSync(path.join(uploadsDir(bucket), uploadId), { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      if (cutMode === 'after') cutSocket(ctx);
      return;
    }
    if (ctx.method === 'POST') {
      const done = completed.get(uploadId);
      if (done && done.bucket === bucket && done.key === key) {
        ctx.type = 'application/xml';
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Location>/${escapeXml(bucket)}/${escapeXml(key)}</Location><Bucket>${escapeXml(bucket)}</Bucket><Key>${escapeXml(key)}</Key><ETag>"${done.etag}"</ETag></CompleteMultipartUploadResult>`;
        return;
      }
    }
    if (!uploadKnown(bucket, uploadId)) return xmlError(ctx, 404, 'NoSuchUpload', 'The specified upload does not exist.');
  }

  // ---- object requests: one at a time per key, with AWS's conditional writes ---------------
  const isObjectWrite =
    bucket && key && ((ctx.method === 'PUT' && !('uploadId' in q) && !('tagging' in q)) || (ctx.method === 'POST' && 'uploadId' in q));
  const isObjectAccess =
    bucket && key && !('uploadId' in q) && !('uploads' in q) && !('tagging' in q) && ['GET', 'HEAD', 'DELETE'].includes(ctx.method);
  if (isObjectWrite || isObjectAccess) releases.push(await lock(`key:${bucket}/${key}`));
  {
    if (isObjectWrite && conditionalWrites) {
      const ifNoneMatch = ctx.get('if-none-match');
      const ifMatch = ctx.get('if-match');
      if (ifNoneMatch || ifMatch) {
        const etag = await currentEtag(bucket, key);
        if (ifNoneMatch === '*' && etag !== undefined) {
          return xmlError(
            ctx,
            412,
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
            '<Condition>If-None-Match</Condition>',
          );
        }
        if (ifMatch) {
          if (etag === undefined)
            return xmlError(ctx, 404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${escapeXml(key)}</Key>`);
          if (ifMatch.replace(/"/g, '') !== etag) {
            return xmlError(
              ctx,
              412,
              'PreconditionFailed',
              'At least one of the pre-conditions you specified did not hold',
              '<Condition>If-Match</Condition>',
            );
          }
        }
      }
    }
    await next();
    if (ctx.method === 'POST' && 'uploadId' in q && ctx.status === 200) {
      const etag = await currentEtag(bucket, key);
      if (etag) completed.set(String(q.uploadId), { bucket, key, etag });
    }
    if (cutMode === 'after' && ctx.method !== 'GET' && ctx.method !== 'HEAD') return cutSocket(ctx);
    const body = ctx.body;
    const len = ctx.length;
    const cutBody = cutMode === 'after' || (faults.cutGetBody > 0 && Math.random() < faults.cutGetBody);
    if (ctx.method === 'GET' && body && typeof body.pipe === 'function' && typeof len === 'number' && len > 0 && cutBody) {
      // Send part of the body, then cut the connection.
      const limit = Math.floor(Math.random() * len);
      let sent = 0;
      const socket = ctx.req.socket;
      const t = new Transform({
        transform(chunk, _enc, cb) {
          if (sent + chunk.length > limit) {
            const head = chunk.subarray(0, Math.max(0, limit - sent));
            sent = limit;
            if (head.length) this.push(head);
            counts.faults.cut++;
            setTimeout(() => socket.destroy(), 5);
            return cb();
          }
          sent += chunk.length;
          cb(null, chunk);
        },
      });
      body.pipe(t);
      ctx.body = t;
      ctx.length = len;
    }
  }
}

// Deleting an object does not remove the directories s3rver keeps keys in: s3rver's clean-up
// races with concurrent PUTs into the same directory (the PUT's file stream then fails with no
// listener, which would crash the server).
app.store.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map((r) =>
      fs.promises.unlink(this.getResourcePath(bucket, key, r)).catch((e) => {
        if (e.code !== 'ENOENT') throw e;
      }),
    ),
  );
};

process.on('uncaughtException', (e) => {
  process.stderr.write(`test S3 server: uncaught ${e && e.stack ? e.stack : e}\n`);
});

import('./credentials.ts')
  .then((m) => {
    credentials = m;
    return app.run();
  })
  .then(
    (addr) => {
      process.send({ type: 'ready', port: addr.port });
    },
    (err) => {
      process.send({ type: 'error', message: String(err && err.stack ? err.stack : err) });
      process.exit(1);
    },
  );

process.on('message', (msg) => {
  if (!msg || typeof msg !== 'object') return;
  if (msg.type === 'faults') {
    faults = { slowDown: 0, cut: 0, cutGetBody: 0, hangPutMatch: '', hangMs: 0, ...msg.faults };
    process.send({ type: 'ack', id: msg.id });
  } else if (msg.type === 'counts') {
    process.send({ type: 'counts', id: msg.id, counts });
  } else if (msg.type === 'resetCounts') {
    counts = newCounts();
    process.send({ type: 'ack', id: msg.id });
  } else if (msg.type === 'stop') {
    app.close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
