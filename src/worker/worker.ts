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
import { JobFileStore } from '../filestore/jobFileStore.js';
import type { JobContext } from '../job/context.js';
import { planSave } from '../job/graph.js';
import { FunctionJob, Job, jobInternals, setJobInternals } from '../job/job.js';
import { encodeValue } from '../job/json.js';
import { JobPromise } from '../job/promise.js';
import type { Registry } from '../job/registry.js';
import { fitsWithin, resolveRequirements, type RequirementDefaults } from '../job/requirements.js';
import type { JobRecord, ResolvedRequirements } from '../job/types.js';
import { openJobStore } from '../jobstore/open.js';
import type { ChannelMessage, JobStore, Versioned } from '../jobstore/types.js';
import { readWorkflowInfo } from '../jobstore/workflowInfo.js';
import type { WorkerArgs } from '../batch/types.js';
import { OutputCapture } from './capture.js';
import { loadBundleFromStore } from './loadBundle.js';
import { PromiseResolver } from './resolve.js';

export type { WorkerArgs };

export const EXIT = { ok: 0, failed: 1, usage: 2, stale: 3, store: 4 } as const;

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

/** Runs a batch job; returns the exit code. Never throws. */
export async function runWorker(args: WorkerArgs): Promise<number> {
  let store: JobStore;
  let registry: Registry;
  let workflow: NonNullable<WorkerArgs['workflow']>;
  try {
    store = await storeFor(args.locator);
    if (args.workflow) workflow = args.workflow;
    else {
      const info = await readWorkflowInfo(store);
      if (!info) throw new ToilError('JOBSTORE_MISSING', `${args.locator} holds no workflow`);
      workflow = { workflowId: info.info.workflowId, bundleHash: info.info.bundleHash, defaults: info.info.defaults };
    }
    registry = (await loadBundleFromStore(store, workflow.bundleHash)).registry;
  } catch (e) {
    process.stderr.write(`toil worker: ${errorMessage(e)}\n`);
    return e instanceof ToilError && e.code === 'USAGE' ? EXIT.usage : EXIT.store;
  }

  const resolver = new PromiseResolver(store);
  let jobId: string | undefined = args.jobId;
  let allocated = args.allocated;
  let loadedNext: Versioned<JobRecord> | undefined;
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
    const outcome = await runOne(store, registry, resolver, current, requirements, workflow, args, allocated);
    if (outcome.code !== EXIT.ok) return outcome.code;
    jobId = outcome.next?.value.id;
    loadedNext = outcome.next;
  }
  return EXIT.ok;
}

interface OneOutcome {
  code: number;
  next?: Versioned<JobRecord>;
}

function instantiate(registry: Registry, rec: JobRecord, decoded: unknown): Job<unknown> {
  const def = registry.get(rec.name);
  if (!def) {
    throw new ToilError('USAGE', `no job named '${rec.name}' is defined by the workflow module (known: ${registry.names().join(', ') || 'none'})`);
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

async function runOne(
  store: JobStore,
  registry: Registry,
  resolver: PromiseResolver,
  current: Versioned<JobRecord>,
  requirements: ResolvedRequirements,
  workflow: NonNullable<WorkerArgs['workflow']>,
  args: WorkerArgs,
  allocated: ResolvedRequirements,
): Promise<OneOutcome> {
  const { workflowId, defaults } = workflow;
  const rec = current.value;
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const label = `'${rec.name}' (${rec.id})`;
  const capture = new OutputCapture(args.echo ?? false, label);
  const workDir = path.join(args.workDir ?? os.tmpdir(), `toil-${workflowId}`);
  const files = new JobFileStore(store, rec.id, workDir);
  const logLines: string[] = [];
  const log = { store, rec, logLines, started, cpu0 };

  const forwards = new Set<string>();
  try {
    const decoded = await resolver.decode(rec.payload);
    const job = instantiate(registry, rec, decoded);
    const ctx: JobContext = {
      jobId: rec.id,
      jobName: rec.name,
      workflowId,
      requirements,
      log(message: string) {
        const line = String(message);
        logLines.push(line);
        capture.add(`[ctx.log] ${line}\n`);
      },
      addChild: (j) => job.addChild(j),
      addFollowOn: (j) => job.addFollowOn(j),
      fileStore: files,
    };
    capture.start();
    let value: unknown;
    try {
      value = await job.run(ctx);
    } finally {
      capture.stop();
    }
    // New jobs get their ids first, so a returned promise of one can be encoded.
    const plan = planSave({ running: job, createdBy: rec.id });
    const encodedResult = encodeValue(value, {
      what: `the return value of job ${label}`,
      idOf: (j) => jobIdOf(j),
      deps: forwards,
    });
    if (value instanceof JobPromise && jobIdOf(value.job) === rec.id) {
      throw new ToilError('GRAPH', `job ${label} returned its own promise`);
    }
    // Save the new jobs before the commit that makes them reachable.
    const versions = await mapLimit(plan.records, 16, (r) => store.createJob(r));
    const spawnedIds = plan.records.map((r) => r.id);

    // Decide about chaining before committing, so the leader learns it from the record.
    const committed: JobRecord = {
      ...rec,
      state: 'done',
      result: encodedResult,
      children: [...rec.children, ...plan.newChildren],
      followOns: [...rec.followOns, ...plan.newFollowOns],
      attempts: rec.attempts + 1,
      ...(forwards.size > 0 ? { forwards: [...forwards] } : {}),
      ...(spawnedIds.length > 0 ? { spawned: spawnedIds } : {}),
      ...(files.toDelete.length > 0 ? { filesToDelete: [...files.toDelete] } : {}),
    };
    delete committed.failure;
    const next = args.chain === false ? undefined : await chainCandidate(store, committed, plan.records, versions, allocated, defaults);
    if (next) committed.chainedInto = next.value.id;
    try {
      await store.updateJob(committed, current.version);
    } catch (e) {
      await Promise.all(spawnedIds.map((id) => store.deleteJob(id).catch(() => undefined)));
      if (e instanceof ConflictError) {
        process.stderr.write(`toil worker: job ${label} was changed by another attempt; discarding this attempt's result\n`);
        await files.finish(true);
        return { code: EXIT.stale };
      }
      throw e;
    }
    resolver.remember(committed);
    await Promise.all(files.toDelete.map((id) => store.deleteFile(id).catch(() => undefined)));
    await files.finish(false);
    await flush({ ...log, output: capture.text() });
    return next ? { code: EXIT.ok, next } : { code: EXIT.ok };
  } catch (e) {
    capture.stop();
    const failure = describeFailure(e);
    capture.add(`\nJob ${label} failed: ${failure.text}${failure.stack ? `\n${failure.stack}` : ''}\n`);
    await files.finish(true).catch(() => undefined);
    try {
      await flush({ ...log, output: capture.text(), failure });
    } catch (e2) {
      process.stderr.write(`toil worker: cannot save the log of job ${label}: ${errorMessage(e2)}\n`);
    }
    if (args.echo !== true) process.stderr.write(`Job ${label} failed: ${failure.text}\n`);
    return { code: EXIT.failed };
  }
}

/**
 * Why an attempt failed, for people: an error the job threw, message first (its stack frames
 * apart), or a problem toil-ts found with what the job did (its return value, its new jobs).
 */
export function describeFailure(e: unknown): { text: string; stack?: string } {
  if (e instanceof ToilError) return { text: e.message };
  if (!(e instanceof Error)) return { text: `the job threw ${typeof e === 'string' ? JSON.stringify(e) : String(e)}` };
  const head = `${e.name}: ${e.message}`.split('\n').join(' ');
  const frames = userFrames(e.stack ?? '');
  return frames.length > 0 ? { text: `the job threw ${head}`, stack: frames.join('\n') } : { text: `the job threw ${head}` };
}

/** toil-ts's own compiled code (frames there say nothing about the job). */
const OWN_CODE = new URL('..', import.meta.url).href;

/** The stack frames of a stack, without those in toil-ts itself or in Node's internals (unless that is all). */
function userFrames(stack: string): string[] {
  const frames = stack.split('\n').filter((l) => /^\s+at /.test(l)).map((l) => l.trim());
  const theirs = frames.filter((f) => !f.includes(OWN_CODE) && !f.includes('(node:internal/') && !f.startsWith('at node:internal/'));
  return theirs.length > 0 ? theirs : frames;
}

function jobIdOf(j: Job<unknown>): string | undefined {
  try {
    return jobInternals(j).id;
  } catch {
    return undefined;
  }
}

interface FlushArgs {
  store: JobStore;
  rec: JobRecord;
  output: string;
  logLines: string[];
  started: number;
  cpu0: NodeJS.CpuUsage;
  failure?: { text: string; stack?: string };
}

/** Saves an attempt's output and sends its log lines (and, if it failed, why) to the leader. */
async function flush({ store, rec, output, logLines, started, cpu0, failure }: FlushArgs): Promise<void> {
  const writes: Promise<unknown>[] = [];
  if (output.length > 0) writes.push(store.writeJobLog(rec.id, output));
  if (logLines.length > 0) {
    const msg: ChannelMessage = { kind: 'log', jobId: rec.id, jobName: rec.name, text: logLines.join('\n'), at: Date.now() };
    writes.push(store.sendMessage(msg));
  }
  if (failure) writes.push(store.sendMessage({ kind: 'failure', jobId: rec.id, jobName: rec.name, ...failure, at: Date.now() }));
  if (process.env['TOIL_STATS'] === '1') {
    const cpu = process.cpuUsage(cpu0);
    writes.push(
      store.sendMessage({
        kind: 'stats',
        jobId: rec.id,
        jobName: rec.name,
        wallSeconds: (Date.now() - started) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        peakRss: process.resourceUsage().maxRSS * 1024,
        at: Date.now(),
      }),
    );
  }
  await Promise.all(writes);
}

/**
 * The single successor this worker may run next: the finished job has exactly one successor,
 * whose only predecessor is the finished job, whose promises are all resolvable now, which is
 * not a checkpoint, and which fits in this worker's resources.
 */
async function chainCandidate(
  store: JobStore,
  done: JobRecord,
  created: JobRecord[],
  createdVersions: string[],
  allocated: ResolvedRequirements,
  defaults: RequirementDefaults,
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
