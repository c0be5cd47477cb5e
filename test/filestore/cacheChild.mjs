// A process using the node cache, for the multi-process tests (imports the built dist/).
// Prints one JSON line on stdout with what it got; progress lines start with '#'.
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, createReadStream, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { placeFile } from '../../dist/filestore/cacheFiles.js';
import { NodeCache } from '../../dist/filestore/nodeCache.js';

const [mode, dir, ...rest] = process.argv.slice(2);
const opts = JSON.parse(rest[0] ?? '{}');

if (mode === 'sql') {
  // Runs opts.statements ([sql, ...params]) on cache.db, as another version or a crash would leave it.
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(path.join(dir, 'cache.db'));
  for (const [sql, ...params] of opts.statements) db.prepare(sql).run(...params);
  db.close();
  process.exit(0);
}

if (mode === 'open-many') {
  // Opens the cache opts.n times (each fails if cache.db is corrupt): what is left open afterwards.
  const fds = () => readdirSync('/proc/self/fd').length;
  const before = fds();
  const errors = new Set();
  for (let i = 0; i < opts.n; i++) {
    try {
      NodeCache.open({ dir }).close();
    } catch (e) {
      errors.add(e.message);
    }
  }
  console.log(JSON.stringify({ errors: [...errors], fdsBefore: before, fdsAfter: fds(), locks: readdirSync(path.join(dir, 'holders')) }));
  process.exit(0);
}

const cache = NodeCache.open({
  dir,
  ...(opts.cap ? { cap: opts.cap } : {}),
  ...(opts.unjudgedWaitMs ? { unjudgedWaitMs: opts.unjudgedWaitMs } : {}),
});
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Copies `source` to `dest` in chunks, `delayMs` apart (a slow download). */
async function slowCopy(source, dest, delayMs) {
  const out = await open(dest, 'w');
  let first = true;
  for await (const chunk of createReadStream(source, { highWaterMark: 64 * 1024 })) {
    await out.write(chunk);
    if (first) process.stdout.write('# fetching\n');
    if (first && opts.blockMs) {
      // A busy holder: its event loop is blocked (a long synchronous computation).
      const until = Date.now() + opts.blockMs;
      while (Date.now() < until);
    }
    first = false;
    if (delayMs) await sleep(delayMs);
  }
  await out.close();
}

async function read(key, source, job) {
  const size = (await import('node:fs')).statSync(source).size;
  const got = await cache.obtain({
    key,
    size,
    job,
    fetch: async (dest) => {
      appendFileSync(opts.fetchLog, `${process.pid} ${key}\n`);
      await slowCopy(source, dest, opts.delayMs ?? 0);
    },
  });
  const notes = got.notes?.length > 0 ? { notes: got.notes } : {};
  if (!got.path) return { key, hit: false, cached: false, ...notes };
  const mine = path.join(mkdtempSync(path.join(os.tmpdir(), 'cache-child-')), 'data');
  const how = await placeFile(got.path, mine, { copy: false });
  const sha = createHash('sha256').update(readFileSync(mine)).digest('hex');
  if (opts.damage) await damage(mine);
  return { key, hit: got.hit, cached: true, how, sha, ...notes };
}

/** What a careless job does: writes into the file it was given (a link to the cached copy), in place, a moment later. */
async function damage(file) {
  await sleep(50);
  chmodSync(file, 0o644);
  const fh = await open(file, 'r+');
  await fh.write(Buffer.from('damaged!'), 0, 8, 0);
  await fh.close();
}

if (mode === 'once') {
  // opts.scope: the job store whose workflows share the key (none: shared by all).
  const produce = async (d) => {
    appendFileSync(opts.counter, `${process.pid}\n`);
    writeFileSync(path.join(d, 'partial'), 'started');
    process.stdout.write('# producing\n');
    await sleep(opts.delayMs ?? 300);
    if (opts.crash) {
      writeFileSync(path.join(d, 'leftover'), 'half-made');
      process.kill(process.pid, 'SIGKILL');
    }
    if (opts.throw) throw new Error('producer failed');
    writeFileSync(path.join(d, 'done'), `made by ${process.pid}`);
  };
  const got = await cache.onceOnNode(opts.key, produce, { scope: opts.scope }).then(
    ({ dir: d, notes }) => ({ dir: d, done: readFileSync(path.join(d, 'done'), 'utf8'), ...(notes.length > 0 ? { notes } : {}) }),
    (e) => ({ error: e.message }),
  );
  console.log(JSON.stringify(got));
} else if (mode === 'read') {
  // opts.reads: [{ key, source }] read in order, each by job opts.job; held until opts.holdMs passed.
  const results = [];
  for (const r of opts.reads) results.push(await read(r.key, r.source, opts.job ?? 'job'));
  process.stdout.write('# read\n');
  if (opts.holdMs) await sleep(opts.holdMs);
  if (!opts.keep) cache.release(opts.job ?? 'job');
  console.log(JSON.stringify({ results, entries: cache.entries().map((e) => ({ key: e.key, refs: e.refs, state: e.state })) }));
} else if (mode === 'job') {
  // A worker's job through JobFileStore (a real file job store): it reserves opts.disk, reads
  // the file opts.source (stored first) into its directory, writes opts.output bytes there,
  // and holds all that for opts.holdMs.
  const { JobFileStore } = await import('../../dist/filestore/jobFileStore.js');
  const { openJobStore } = await import('../../dist/jobstore/open.js');
  const store = await openJobStore(opts.store);
  if (!(await store.exists())) await store.create();
  const id = await store.writeFile(opts.source);
  const files = new JobFileStore({ store, jobId: 'job', workDir: opts.workDir, cache: { files: true, open: () => cache } });
  await files.start(opts.disk);
  const read = await files.readGlobalFile(id);
  const dir = await files.localTempDir();
  writeFileSync(path.join(dir, 'output'), Buffer.alloc(opts.output, 1));
  process.stdout.write(`# ready ${JSON.stringify({ dir, read })}\n`);
  await sleep(opts.holdMs ?? 0);
  await files.finish(false);
  console.log(JSON.stringify({ dir, read }));
} else if (mode === 'reserve') {
  const started = Date.now();
  const got = await cache.reserve('job', opts.bytes).then(
    () => ({ ok: true }),
    (e) => ({ error: e.message, name: e.name }),
  );
  process.stdout.write('# reserved\n');
  if (opts.holdMs) await sleep(opts.holdMs);
  console.log(JSON.stringify({ ...got, waitedMs: Date.now() - started, capacity: cache.capacity() }));
}
cache.close();
