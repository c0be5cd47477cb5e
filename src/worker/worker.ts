/**
 * The worker: runs one batch job. It loads the job's record, resolves its promises, runs the
 * user code, saves the jobs it created, and commits the result with a versioned update (a
 * stale worker loses). When the finished job has exactly one successor that is ready and fits
 * in this worker's resources, it runs that one too ("chaining"), saving a round trip.
 *
 * Exit codes: 0 done; 1 the job failed; 2 bad invocation; 3 the job's record changed under us
 * (another attempt won); 4 the job store or bundle could not be read.
 */
import os from 'node:os';
import path from 'node:path';
import { mapLimit } from '../concurrency.js';
import { ConflictError, ToilError, errorMessage } from '../errors.js';
import { failureLines, jobLabel, stackFrames, userFrames, type JobFailure } from '../jobFailure.js';
import { JobFileStore, type CacheAccess } from '../filestore/jobFileStore.js';
import { sharedNodeCache } from '../filestore/nodeCache.js';
import type { JobContext } from '../job/context.js';
import { planSave } from '../job/graph.js';
import { FunctionJob, Job, jobInternals, setJobInternals } from '../job/job.js';
import { encodeValue } from '../job/json.js';
import { JobPromise } from '../job/promise.js';
import type { Registry } from '../job/registry.js';
import { fitsWithin, resolveRequirements, type RequirementDefaults } from '../job/requirements.js';
import { JobRecordSchema, type JobRecord, type ResolvedRequirements } from '../job/types.js';
import { openJobStore } from '../jobstore/open.js';
import type { ChannelMessage, JobStore, Versioned } from '../jobstore/types.js';
import { readWorkflowInfo } from '../jobstore/workflowInfo.js';
import type { WorkerArgs, WorkerRecords } from '../batch/types.js';
import { WORKER_EXIT_JOB_FAILED } from '../batch/processEnd.js';
import { OutputCapture } from './capture.js';
import { loadBundleFromStore } from './loadBundle.js';
import { startMeasuring, type Measurement } from './measure.js';
import { PromiseResolver } from './resolve.js';

export type { WorkerArgs, WorkerRecords };

export const EXIT = { ok: 0, failed: WORKER_EXIT_JOB_FAILED, usage: 2, stale: 3, store: 4 } as const;

/** The node cache's directory inside the work directory (in worker pods, on the host path). */
export const CACHE_DIR = 'toil-cache';

const stores = new Map<string, Promise<JobStore>>();
function storeFor(locator: string): Promise<JobStore> {
  let s = stores.get(locator);
  if (!s) {
    s = openJobStore(locator);
    stores.set(locator, s);
    s.catch(() => stores.delete(locator));
  }
  return s;
}

/**
 * Readies this process for the jobs of a job store's workflow before the first comes: the job
 * store opened, the workflow's bundle loaded. A failure is left for the first job to report.
 */
export async function warmWorker(locator: string): Promise<void> {
  try {
    const store = await storeFor(locator);
    const info = await readWorkflowInfo(store);
    if (info) await loadBundleFromStore(store, info.info.bundleHash);
  } catch {
    /* the first job says what is wrong */
  }
}

/** What a worker process running jobs for a pool tells it as they run. */
export interface WorkerHooks {
  /** A job's temporary directory was made (chained jobs each make their own). */
  onTempDir?: (dir: string) => void;
}

/** Runs a batch job; returns the exit code, and with `records`, fills it with what it committed. Never throws. */
export async function runWorker(args: WorkerArgs, records?: WorkerRecords, hooks: WorkerHooks = {}): Promise<number> {
  let store: JobStore;
  let registry: Registry;
  let workflow: NonNullable<WorkerArgs['workflow']>;
  try {
    store = await storeFor(args.locator);
    if (args.workflow) workflow = args.workflow;
    else {
      const info = await readWorkflowInfo(store);
      if (!info) throw new ToilError('JOBSTORE_MISSING', `${args.locator} holds no workflow`);
      workflow = {
        workflowId: info.info.workflowId,
        bundleHash: info.info.bundleHash,
        defaults: info.info.defaults,
        ...(info.info.caching ? { caching: info.info.caching } : {}),
        ...(info.info.measure ? { measure: true } : {}),
      };
    }
    registry = (await loadBundleFromStore(store, workflow.bundleHash)).registry;
  } catch (e) {
    process.stderr.write(`toil worker: ${errorMessage(e)}\n`);
    return e instanceof ToilError && e.code === 'USAGE' ? EXIT.usage : EXIT.store;
  }

  const session: Session = { store, registry, resolver: new PromiseResolver(store), workflow, args, hooks };
  let jobId: string | undefined = args.jobId;
  let allocated = args.allocated;
  let loadedNext = handedRecord(args);
  while (jobId !== undefined) {
    let current: Versioned<JobRecord>;
    try {
      current = loadedNext ?? (await store.loadJob(jobId));
    } catch (e) {
      process.stderr.write(`toil worker: cannot load job ${jobId}: ${errorMessage(e)}\n`);
      return EXIT.store;
    }
    if (current.value.state !== 'pending') {
      // Already finished by another attempt: nothing to do.
      return EXIT.ok;
    }
    const requirements = resolveRequirements(current.value.requirements, workflow.defaults);
    allocated ??= requirements;
    const outcome = await runOne(session, startAttempt(session, { current, requirements, allocated }));
    if (outcome.code !== EXIT.ok) return outcome.code;
    if (records && outcome.committed) {
      records.done.push(outcome.committed.record);
      records.created.push(...outcome.committed.created);
      Object.assign(records.versions, outcome.committed.versions);
    }
    jobId = outcome.next?.value.id;
    loadedNext = outcome.next;
  }
  return EXIT.ok;
}

/** The first job's record as the leader handed it (checked as a stored one is), or undefined: read it. */
function handedRecord(args: WorkerArgs): Versioned<JobRecord> | undefined {
  const r = args.record;
  if (!r || r.value.id !== args.jobId) return undefined;
  const parsed = JobRecordSchema.safeParse(r.value);
  return parsed.success ? { value: parsed.data as JobRecord, version: r.version } : undefined;
}

/** What the jobs of one worker run share. */
interface Session {
  store: JobStore;
  registry: Registry;
  resolver: PromiseResolver;
  workflow: NonNullable<WorkerArgs['workflow']>;
  args: WorkerArgs;
  hooks: WorkerHooks;
}

/** One attempt at one job: its record, what it may use, where its output and files go. */
interface Attempt {
  current: Versioned<JobRecord>;
  requirements: ResolvedRequirements;
  /** What this batch job was given (chaining runs successors that fit in it). */
  allocated: ResolvedRequirements;
  label: string;
  capture: OutputCapture;
  files: JobFileStore;
  /** Lines sent with ctx.log. */
  logLines: string[];
  /** When the workflow measures its jobs (measure.ts). */
  measurement?: Measurement;
  /** Bytes in the job's temporary directory when it ended (measured when the workflow asks). */
  diskBytes: number;
}

interface OneOutcome {
  code: number;
  next?: Versioned<JobRecord>;
  /** The job's record as committed, and the records of the jobs it created with their versions (by id). */
  committed?: { record: JobRecord; created: JobRecord[]; versions: Record<string, string> };
}

function startAttempt(s: Session, job: Pick<Attempt, 'current' | 'requirements' | 'allocated'>): Attempt {
  const rec = job.current.value;
  const label = jobLabel(rec.name, rec.id);
  const base = s.args.workDir ?? os.tmpdir();
  const workDir = path.join(base, `toil-${s.workflow.workflowId}`);
  return {
    ...job,
    label,
    capture: new OutputCapture(s.args.echo ?? false, label),
    files: new JobFileStore({
      store: s.store,
      jobId: rec.id,
      workDir,
      cache: cacheAccess(s, base),
      ...(s.hooks.onTempDir ? { onTempDir: s.hooks.onTempDir } : {}),
    }),
    logLines: [],
    ...(s.workflow.measure ? { measurement: startMeasuring() } : {}),
    diskBytes: 0,
  };
}

/** The node cache under the work directory (in worker pods, the hostPath): on unless the workflow said `--disableCaching true`. */
function cacheAccess(s: Session, base: string): CacheAccess {
  const caching = s.workflow.caching ?? { enabled: true };
  const label = `worker ${process.pid} on ${os.hostname()}`;
  return { files: caching.enabled, open: () => sharedNodeCache({ dir: path.join(base, CACHE_DIR), cap: caching.cacheSize, label }) };
}

function instantiate(registry: Registry, rec: JobRecord, decoded: unknown): Job<unknown> {
  const def = registry.get(rec.name);
  if (!def) {
    throw new ToilError(
      'USAGE',
      `no job named '${rec.name}' is defined by the workflow module (known: ${registry.names().join(', ') || 'none'})`,
    );
  }
  let job: Job<unknown>;
  if (def.kind === 'function') {
    if (!Array.isArray(decoded)) throw new ToilError('INTERNAL', `job ${rec.id}: stored arguments are not a list`);
    job = new FunctionJob(def.fn, decoded);
  } else {
    job = Object.assign(Object.create(def.cls.prototype as object) as Job<unknown>, decoded as object);
  }
  setJobInternals(job, {
    name: rec.name,
    kind: rec.kind,
    children: [],
    followOns: [],
    requirements: rec.requirements,
    checkpoint: rec.checkpoint,
    id: rec.id,
  });
  return job;
}

function jobContext(s: Session, a: Attempt, job: Job<unknown>): JobContext {
  const rec = a.current.value;
  return {
    jobId: rec.id,
    jobName: rec.name,
    workflowId: s.workflow.workflowId,
    requirements: a.requirements,
    log(message: string) {
      const line = String(message);
      a.logLines.push(line);
      a.capture.add(`[ctx.log] ${line}\n`);
    },
    addChild: (j) => job.addChild(j),
    addFollowOn: (j) => job.addFollowOn(j),
    fileStore: a.files,
  };
}

/** Runs one job: its code with its output captured, then the commit of what it produced. */
async function runOne(s: Session, a: Attempt): Promise<OneOutcome> {
  try {
    const rec = a.current.value;
    await a.files.start(a.requirements.disk);
    const job = instantiate(s.registry, rec, await s.resolver.decode(rec.payload));
    const ctx = jobContext(s, a, job);
    a.capture.start();
    let value: unknown;
    try {
      value = await job.run(ctx);
    } finally {
      a.capture.stop();
    }
    return await commit(s, a, job, value);
  } catch (e) {
    return failAttempt(s, a, e);
  }
}

/** The finished record: the job's value, the jobs it created, and what to delete at commit. */
async function finishedRecord(
  s: Session,
  a: Attempt,
  job: Job<unknown>,
  value: unknown,
): Promise<{ record: JobRecord; created: JobRecord[]; versions: string[] }> {
  const rec = a.current.value;
  const forwards = new Set<string>();
  // New jobs get their ids first, so a returned promise of one can be encoded.
  const plan = planSave({ running: job, createdBy: rec.id });
  const result = encodeValue(value, { what: `the return value of job ${a.label}`, idOf: (j) => jobIdOf(j), deps: forwards });
  if (value instanceof JobPromise && jobIdOf(value.job) === rec.id) {
    throw new ToilError('GRAPH', `job ${a.label} returned its own promise`);
  }
  // Save the new jobs before the commit that makes them reachable.
  const versions = await mapLimit(plan.records, 16, (r) => s.store.createJob(r));
  const spawned = plan.records.map((r) => r.id);
  const record: JobRecord = {
    ...rec,
    state: 'done',
    result,
    children: [...rec.children, ...plan.newChildren],
    followOns: [...rec.followOns, ...plan.newFollowOns],
    attempts: rec.attempts + 1,
    ...(forwards.size > 0 ? { forwards: [...forwards] } : {}),
    ...(spawned.length > 0 ? { spawned } : {}),
    ...(a.files.toDelete.length > 0 ? { filesToDelete: [...a.files.toDelete] } : {}),
  };
  delete record.failure;
  return { record, created: plan.records, versions };
}

/**
 * Commits a finished job with a versioned update. The chaining decision is made first, so the
 * leader learns it from the record; a stale attempt (the record changed meanwhile) discards
 * its new jobs and files and exits with EXIT.stale.
 */
async function commit(s: Session, a: Attempt, job: Job<unknown>, value: unknown): Promise<OneOutcome> {
  const { record, created, versions } = await finishedRecord(s, a, job, value);
  const next =
    s.args.chain === false
      ? undefined
      : await chainCandidate(s.store, {
          done: record,
          created,
          createdVersions: versions,
          allocated: a.allocated,
          defaults: s.workflow.defaults,
        });
  if (next) record.chainedInto = next.value.id;
  try {
    await s.store.updateJob(record, a.current.version);
  } catch (e) {
    await Promise.all((record.spawned ?? []).map((id) => s.store.deleteJob(id).catch(() => undefined)));
    if (!(e instanceof ConflictError)) throw e;
    process.stderr.write(`toil worker: job ${a.label} was changed by another attempt; discarding this attempt's result\n`);
    await a.files.finish(true);
    return { code: EXIT.stale };
  }
  s.resolver.remember(record);
  await Promise.all(a.files.toDelete.map((id) => s.store.deleteFile(id).catch(() => undefined)));
  await finishFiles(s, a, false);
  await flush(s, a, {});
  const committed = { record, created, versions: Object.fromEntries(created.map((r, i) => [r.id, versions[i] ?? ''])) };
  return next ? { code: EXIT.ok, next, committed } : { code: EXIT.ok, committed };
}

/** A failed attempt: its files removed, its output and the reason saved for the leader. */
async function failAttempt(s: Session, a: Attempt, e: unknown): Promise<OneOutcome> {
  a.capture.stop();
  const failure = describeFailure(e);
  a.capture.add(failureLines(a.label, failure));
  await finishFiles(s, a, true).catch(() => undefined);
  try {
    await flush(s, a, { failure });
  } catch (e2) {
    process.stderr.write(`toil worker: cannot save the log of job ${a.label}: ${errorMessage(e2)}\n`);
  }
  if (s.args.echo !== true) process.stderr.write(`Job ${a.label} failed: ${failure.text}\n`);
  return { code: EXIT.failed };
}

/**
 * Why an attempt failed, for people: an error the job threw, message first (the workflow's own
 * stack frames apart; all of them when none is the workflow's), or a problem toil-ts found with
 * what the job did (its return value, its new jobs).
 */
export function describeFailure(e: unknown): JobFailure {
  if (e instanceof ToilError) return { text: e.message };
  if (!(e instanceof Error)) return { text: `the job threw ${typeof e === 'string' ? JSON.stringify(e) : String(e)}` };
  const head = `${e.name}: ${e.message}`.split('\n').join(' ');
  const theirs = userFrames(e.stack ?? '');
  const frames = theirs.length > 0 ? theirs : stackFrames(e.stack ?? '');
  return frames.length > 0 ? { text: `the job threw ${head}`, stack: frames.join('\n') } : { text: `the job threw ${head}` };
}

function jobIdOf(j: Job<unknown>): string | undefined {
  try {
    return jobInternals(j).id;
  } catch {
    return undefined;
  }
}

/** Ends the attempt's use of files; first, when the workflow measures its jobs, takes the size of its temporary directory. */
async function finishFiles(s: Session, a: Attempt, failed: boolean): Promise<void> {
  if (s.workflow.measure) a.diskBytes = await a.files.tempDirBytes();
  await a.files.finish(failed);
}

/** Saves an attempt's output and sends its log lines (and, if it failed, why) and its stats to the leader. */
async function flush(s: Session, a: Attempt, extra: { failure?: JobFailure }): Promise<void> {
  const store = s.store;
  const rec = a.current.value;
  const output = a.capture.text();
  const writes: Promise<unknown>[] = [];
  if (output.length > 0) writes.push(store.writeJobLog(rec.id, output));
  if (a.logLines.length > 0) {
    const msg: ChannelMessage = { kind: 'log', jobId: rec.id, jobName: rec.name, text: a.logLines.join('\n'), at: Date.now() };
    writes.push(store.sendMessage(msg));
  }
  if (a.files.warnings.length > 0) {
    const text = a.files.warnings.join('\n');
    writes.push(store.sendMessage({ kind: 'log', level: 'warning', jobId: rec.id, jobName: rec.name, text, at: Date.now() }));
  }
  if (extra.failure)
    writes.push(store.sendMessage({ kind: 'failure', jobId: rec.id, jobName: rec.name, ...extra.failure, at: Date.now() }));
  const cache = a.files.stats;
  if (a.measurement || cache.hits + cache.misses > 0) writes.push(store.sendMessage(statsMessage(a, !extra.failure)));
  await Promise.all(writes);
}

/** A job's stats: its node cache counters, and when the workflow measures its jobs what it used (measure.ts). */
function statsMessage(a: Attempt, ok: boolean): ChannelMessage {
  const msg: ChannelMessage = {
    kind: 'stats',
    jobId: a.current.value.id,
    jobName: a.current.value.name,
    cache: { ...a.files.stats },
    at: Date.now(),
  };
  if (!a.measurement) return msg;
  const m = a.measurement.finish();
  return {
    ...msg,
    wallSeconds: m.wallSeconds,
    cpuSeconds: m.cpuSeconds,
    peakRss: m.peakRss,
    measured: {
      startedAt: m.startedAt,
      childCpuSeconds: m.childCpuSeconds,
      peakScope: m.peakScope,
      ...a.files.io,
      diskBytes: a.diskBytes,
      host: os.hostname(),
      pid: process.pid,
      ok,
    },
  };
}

/**
 * The single successor this worker may run next: the finished job has exactly one successor,
 * whose only predecessor is the finished job, whose promises are all resolvable now, which is
 * not a checkpoint, and which fits in this worker's resources.
 */
async function chainCandidate(
  store: JobStore,
  {
    done,
    created,
    createdVersions,
    allocated,
    defaults,
  }: { done: JobRecord; created: JobRecord[]; createdVersions: string[]; allocated: ResolvedRequirements; defaults: RequirementDefaults },
): Promise<Versioned<JobRecord> | undefined> {
  const successors = [...done.children, ...done.followOns];
  if (successors.length !== 1 || done.checkpoint) return undefined;
  const id = successors[0]!;
  const k = created.findIndex((r) => r.id === id);
  let next: Versioned<JobRecord>;
  if (k >= 0) next = { value: created[k]!, version: createdVersions[k]! };
  else {
    try {
      next = await store.loadJob(id);
    } catch {
      return undefined;
    }
  }
  const r = next.value;
  if (r.state !== 'pending' || r.checkpoint || r.predecessors.length !== 1 || r.predecessors[0] !== done.id) return undefined;
  for (const dep of r.promiseDeps) {
    if (dep === done.id) {
      if (done.forwards !== undefined) return undefined;
      continue;
    }
    const d = await store.loadJob(dep).catch(() => undefined);
    if (!d || d.value.state !== 'done' || d.value.forwards !== undefined) return undefined;
  }
  return fitsWithin(resolveRequirements(r.requirements, defaults), allocated) ? next : undefined;
}
