/**
 * `Toil`: runs a workflow from start to end. The CLI's `toil run` is a thin layer over it.
 *
 * ```ts
 * import { Toil } from 'toil-ts';
 * import { hello } from './jobs.js';
 *
 * const toil = await Toil.open({ jobStore: './my-store', workflow: './jobs.ts' });
 * const value = await toil.start(hello('world'));
 * ```
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { createBatchSystem } from './batchFactory.js';
import { HeapPeak } from './heapPeak.js';
import { LeaseLostError, ToilError, UsageError } from '../errors.js';
import type { BatchSystem } from '../batch/types.js';
import { exportUrl, importUrl } from '../filestore/urls.js';
import type { WorkflowContext } from '../job/context.js';
import { planSave } from '../job/graph.js';
import { Job, jobInternals } from '../job/job.js';
import { encodeValue } from '../job/json.js';
import type { Json } from '../job/types.js';
import { FencedJobStore } from '../jobstore/fenced.js';
import type { JobStore } from '../jobstore/types.js';
import { readWorkflowInfo, writeWorkflowInfo, type WorkflowInfo } from '../jobstore/workflowInfo.js';
import { KILL_FILE, Leader, type FailedJob, type LeaderResult } from '../leader/leader.js';
import { Lease } from '../leader/lease.js';
import { createLogger, type Logger, type LogLevel } from '../log.js';
import { bundleSharedName, loadBundleCode, type LoadedBundle } from '../worker/loadBundle.js';
import { PromiseResolver } from '../worker/resolve.js';
import { bundleWorkflow, type Bundle } from './bundle.js';
import {
  defaultWorkDir,
  environmentLayer,
  firstRunLayer,
  optionLayer,
  parseConfig,
  resolveConfig,
  type ToilConfig,
  type ToilConfigInput,
} from './config.js';
import {
  checkRestartArgs,
  definedOptions,
  firstRunOptions,
  restartOptionsLine,
  storableOptions,
  type OptionValue,
} from './restartOptions.js';
import { openStore } from './openStore.js';
import { checkTraceFile, closeRunStats, measuring, openRunStats } from './runStats.js';
import { typecheckWorkflow } from './typecheck.js';
import { obtainWorkflow } from './workflowSource.js';

/** The workflow ended without success: each failed job is named with the tail of its log. */
export class WorkflowFailedError extends ToilError {
  constructor(
    message: string,
    readonly failed: FailedJob[],
    readonly notRun: number,
    readonly killed: boolean,
  ) {
    super(killed ? 'KILLED' : 'WORKFLOW_FAILED', message);
  }
}

/** Builds the root job; the default export of a workflow module has this type. */
export type WorkflowBuilder = (wf: WorkflowContext) => Job<unknown> | Promise<Job<unknown>>;

export interface ToilOptions extends ToilConfigInput {
  /** The workflow module (.ts or .js) whose jobs the workers run. */
  workflow: string;
  /** Where log lines go (default: stderr at the configured level). */
  logger?: Logger;
  /** Show a live status line (default: when stderr is a terminal). */
  tty?: boolean;
}

interface ToilParts {
  config: ToilConfig;
  store: JobStore;
  bundle: Bundle;
  loaded: LoadedBundle;
  /** The workflow as recorded in the store and named in messages: a path, or a redacted URL. */
  workflowName: string;
  /** The options given (defaults left out), kept in the store for restarts. */
  given: Record<string, OptionValue>;
  /** At a restart: the options kept from the first run and those overridden, for the log. */
  restartNote?: string;
  logger: Logger;
  tty: boolean;
}

export class Toil {
  private stopRequested: { reason: string; leaveJobs: boolean } | undefined;
  /** Settles when the lease is lost (never, as a rule). */
  private readonly leaseLost = settleable<LeaseLostError>();
  private readonly started = Date.now();
  private leader: Leader | undefined;
  readonly config: ToilConfig;
  readonly store: JobStore;
  readonly logger: Logger;
  /** The workflow module as messages name it: its path, or its URL without credentials or query. */
  readonly workflowName: string;
  private readonly bundle: Bundle;
  private readonly loaded: LoadedBundle;
  private readonly tty: boolean;
  private readonly given: Record<string, OptionValue>;
  private readonly restartNote: string | undefined;

  private constructor(parts: ToilParts) {
    this.given = parts.given;
    this.restartNote = parts.restartNote;
    this.config = parts.config;
    this.store = parts.store;
    this.logger = parts.logger;
    this.workflowName = parts.workflowName;
    this.bundle = parts.bundle;
    this.loaded = parts.loaded;
    this.tty = parts.tty;
  }

  /**
   * Validates the options and compiles the workflow module (a path, or a `file:`, `http(s)://`
   * or `s3://` URL to fetch it from). Creates nothing: a bad option, locator, URL or module is
   * a UsageError here.
   */
  static async open(options: ToilOptions): Promise<Toil> {
    const { workflow, logger, tty, ...rest } = options;
    const given = definedOptions(rest);
    let config = parseConfig(given);
    let store = await openStore(config);
    const firstRun = config.restart ? await firstRunOptions(store) : undefined;
    if (firstRun) {
      const before = { sseKey: config.sseKey, awsMetadata: config.awsMetadata };
      config = resolveConfig([firstRunLayer(firstRun), environmentLayer(), optionLayer(given)]);
      if (config.sseKey !== before.sseKey || config.awsMetadata !== before.awsMetadata) store = await openStore(config);
    }
    await checkTraceFile(config.trace);
    const log = logger ?? createLogger(config.logLevel as LogLevel);
    const { bundle, workflowName } = await bundleSource(workflow, { logger: log, typecheck: config.typecheck });
    const loaded = await loadBundleCode(bundle.hash, bundle.code);
    const parts = {
      config,
      store,
      bundle,
      loaded,
      workflowName,
      given: storableOptions(given),
      ...(firstRun ? { restartNote: restartOptionsLine(firstRun, given) } : {}),
    };
    return new Toil({ ...parts, logger: log, tty: tty ?? process.stderr.isTTY === true });
  }

  /** The workflow module's exports (its default export builds the root job). */
  get module(): Record<string, unknown> {
    return this.loaded.module;
  }

  /** Asks a running workflow to stop: running jobs are killed and the store is kept. */
  stop(reason = 'stopped'): void {
    this.stopRequested ??= { reason, leaveJobs: false };
    this.leader?.stop(reason);
  }

  /** The lease, with its loss wired to stopping the leader (lease.ts: fencing). */
  private newLease(): Lease {
    return new Lease(this.store, {
      durationMs: this.config.leaseSeconds * 1000,
      log: this.logger,
      onLost: (e) => {
        this.logger.error(e.message);
        this.stopRequested ??= { reason: e.message, leaveJobs: e.info.takenOver };
        this.leader?.stop(e.message, { leaveJobs: e.info.takenOver });
        this.leaseLost.resolve(e);
      },
    });
  }

  /**
   * Starts a new workflow in a new job store and runs it to the end. `root` is a job, or a
   * function of the workflow context that returns one (like a module's default export).
   * Resolves to the root job's value; rejects with a WorkflowFailedError.
   */
  async start(root: Job<unknown> | WorkflowBuilder, args: readonly string[] = []): Promise<unknown> {
    if (this.config.restart) return this.restart(args);
    const store = this.store;
    if (await store.exists()) {
      throw new UsageError(
        `job store ${store.locator} already exists: use --restart to resume it, or 'toil clean ${store.locator}' to remove it`,
      );
    }
    const workflowId = randomUUID();
    const batch = await createBatchSystem(this.config, { workflowId, store, logger: this.logger });
    let info: WorkflowInfo;
    const lease = this.newLease();
    try {
      await store.create();
      await lease.acquire(workflowId);
    } catch (e) {
      // A store we cannot lease is kept: whoever holds it may be using it.
      await batch.shutdown();
      throw e;
    }
    const fenced = new FencedJobStore(store, lease);
    try {
      await fenced.writeShared(bundleSharedName(this.bundle.hash), this.bundle.code);
      const exports: Array<{ file: unknown; url: string }> = [];
      const wf: WorkflowContext = {
        args,
        workflowId,
        importFile: (url) => importUrl(fenced, url),
        exportFile: (file, url) => {
          exports.push({ file, url });
        },
        log: (m) => this.logger.info(m),
      };
      const rootJob = typeof root === 'function' ? await root(wf) : root;
      if (!(rootJob instanceof Job)) {
        throw new UsageError(`the workflow's default export must return a job, got ${rootJob === null ? 'null' : typeof rootJob}`);
      }
      const plan = planSave({ roots: [rootJob] });
      for (const r of plan.records) await fenced.createJob(r);
      const idOf = (j: Job<unknown>) => jobInternals(j).id;
      info = {
        workflowId,
        rootJobId: jobInternals(rootJob).id!,
        bundleHash: this.bundle.hash,
        workflowFile: this.workflowName,
        createdAt: new Date().toISOString(),
        defaults: this.defaults(),
        caching: this.caching(),
        measure: measuring(this.config),
        options: this.given,
        args: [...args],
        exports: exports.map((e) => ({ file: encodeValue(e.file, { what: `exportFile(…, '${e.url}')`, idOf }) as Json, url: e.url })),
      };
      await writeWorkflowInfo(fenced, info);
      this.logger.info(`workflow ${workflowId} started in ${store.locator} (${plan.records.length} job(s))`);
    } catch (e) {
      // Nothing half-created: the store we just made goes away again, while we hold it.
      await batch.shutdown();
      lease.stopRenewing();
      await fenced.destroy().catch(() => undefined);
      await lease.release().catch(() => undefined);
      throw e;
    }
    return this.runLeader({ info, lease, batch, restart: false });
  }

  /**
   * Resumes the workflow in an existing job store, without rerunning finished jobs. The
   * workflow keeps the arguments of its first run: `args`, when given, must be those.
   */
  async restart(args?: readonly string[]): Promise<unknown> {
    const store = this.store;
    if (!(await store.exists())) throw new UsageError(`cannot restart: job store ${store.locator} does not exist`);
    const got = await readWorkflowInfo(store);
    if (!got) throw new UsageError(`cannot restart: ${store.locator} holds no workflow (it was never started completely)`);
    checkRestartArgs(got.info.args, args);
    if (this.restartNote) this.logger.info(this.restartNote);
    const lease = this.newLease();
    await lease.acquire(got.info.workflowId);
    const fenced = new FencedJobStore(store, lease);
    let batch;
    let info: WorkflowInfo;
    try {
      await fenced.deleteShared(KILL_FILE);
      // Pick up edited workflow code: the new bundle replaces the old one for jobs not run yet.
      if (got.info.bundleHash !== this.bundle.hash) {
        await fenced.writeShared(bundleSharedName(this.bundle.hash), this.bundle.code);
        this.logger.info(`workflow code changed since the last run; using the new version`);
      }
      info = {
        ...got.info,
        bundleHash: this.bundle.hash,
        defaults: this.defaults(),
        caching: this.caching(),
        measure: measuring(this.config),
      };
      await writeWorkflowInfo(fenced, info, got.version);
      batch = await createBatchSystem(this.config, { workflowId: got.info.workflowId, store, logger: this.logger });
    } catch (e) {
      await lease.release();
      throw e;
    }
    this.logger.info(`restarting workflow ${info.workflowId} from ${store.locator}`);
    return this.runLeader({ info, lease, batch, restart: true });
  }

  private caching(): NonNullable<WorkflowInfo['caching']> {
    const size = this.config.cacheSize;
    return { enabled: !this.config.disableCaching, ...(size !== undefined ? { cacheSize: size } : {}) };
  }

  private defaults(): WorkflowInfo['defaults'] {
    const c = this.config;
    return { cores: c.defaultCores, memory: c.defaultMemory, disk: c.defaultDisk, preemptible: c.defaultPreemptible };
  }

  /**
   * Runs the leader, then, while the lease is held, the end of the workflow: its value, the
   * exports, the record that it completed and what --clean says. Every change to the store goes
   * through the lease's fence: a leader that lost its lease changes nothing more and ends with
   * LeaseLostError, whatever happened before.
   */
  private async runLeader(o: { info: WorkflowInfo; lease: Lease; batch: BatchSystem; restart: boolean }): Promise<unknown> {
    const { info, lease, batch, restart } = o;
    const heap = new HeapPeak();
    const sizing = HeapPeak.sizing();
    if (sizing) this.logger.info(sizing);
    const store = new FencedJobStore(this.store, lease);
    const stats = await openRunStats(this.config, {
      store,
      workflowId: info.workflowId,
      workflowFile: info.workflowFile,
      log: this.logger,
    });
    const leader = new Leader(store, batch, info, {
      retryCount: this.config.retryCount,
      backoff: { baseMs: this.config.retryBackoff * 1000, maxMs: 300_000 },
      maxJobs: this.config.maxJobs ?? Number.MAX_SAFE_INTEGER,
      defaults: this.defaults(),
      workDir: defaultWorkDir(this.config),
      ...(this.config.writeLogs ? { writeLogs: this.config.writeLogs } : {}),
      logger: this.logger,
      tty: this.tty,
      statusIntervalMs: this.config.statusInterval * 1000,
      reconcileIntervalMs: this.config.reconcileInterval * 1000,
      ...(stats ? { stats } : {}),
    });
    this.leader = leader;
    let result: LeaderResult;
    try {
      if (this.stopRequested) leader.stop(this.stopRequested.reason, { leaveJobs: this.stopRequested.leaveJobs });
      result = await this.runFenced({ leader, batch, lease, restart });
    } catch (e) {
      if (e instanceof LeaseLostError) await lease.release();
      throw e;
    } finally {
      this.leader = undefined;
      heap.stop();
      await batch.shutdown();
    }
    let value: unknown;
    let deleted = false;
    try {
      if (lease.lostError) throw lease.lostError;
      await closeRunStats(stats, { ok: result.ok, locator: store.locator, log: this.logger });
      if (result.ok) value = await this.finishWorkflow(info, { lease, store });
      deleted = await this.clean(result.ok, { lease, store });
    } finally {
      await lease.release();
    }
    if (!result.ok) {
      throw new WorkflowFailedError(
        failureSummary(result, { locator: store.locator, deletedBy: deleted ? this.config.clean : undefined }),
        result.failed,
        result.notRun,
        result.killed,
      );
    }
    const rss = process.resourceUsage().maxRSS / 1024;
    this.logger.info(
      `workflow ${info.workflowId} finished: ${result.jobsRun} job(s) run in ${((Date.now() - this.started) / 1000).toFixed(2)}s; leader peak RSS ${rss.toFixed(0)} MiB, ${heap.summary()}`,
    );
    return value;
  }

  /** A successful workflow's value, its exports, and the record that it completed. */
  private async finishWorkflow(info: WorkflowInfo, o: { lease: Lease; store: JobStore }): Promise<unknown> {
    const value = await new PromiseResolver(o.store).valueOf(info.rootJobId);
    await this.doExports(info, o);
    const latest = await readWorkflowInfo(o.store);
    if (latest) await writeWorkflowInfo(o.store, { ...latest.info, completed: true }, latest.version);
    return value;
  }

  /** Destroys the store if --clean says so for this outcome (renewals end: the lease goes with the store). */
  private async clean(ok: boolean, o: { lease: Lease; store: JobStore }): Promise<boolean> {
    const clean = this.config.clean;
    if (!(clean === 'always' || (ok ? clean === 'onSuccess' : clean === 'onError'))) return false;
    o.lease.stopRenewing();
    await o.store.destroy();
    return true;
  }

  /**
   * Runs the leader until it ends or the lease is lost. A lost lease wins at once, even while
   * the leader waits on a job store that does not answer: the batch jobs are ended (or left to
   * the successor that took the lease) and LeaseLostError is thrown; the store is kept whatever
   * --clean says, since a successor may be using it.
   */
  private async runFenced(o: { leader: Leader; batch: BatchSystem; lease: Lease; restart: boolean }): Promise<LeaderResult> {
    const { leader, batch, lease, restart } = o;
    const run = (async () => {
      await leader.load({ restart });
      return leader.run();
    })();
    const first = await Promise.race([run, this.leaseLost.promise]);
    if (first instanceof LeaseLostError) {
      run.catch(() => undefined);
      await batch.shutdown({ leaveJobs: first.info.takenOver });
      throw first;
    }
    if (lease.lostError) throw lease.lostError;
    return first;
  }

  /** The workflow's exports, each begun only while the lease is held (a successor may be doing them). */
  private async doExports(info: WorkflowInfo, o: { lease: Lease; store: JobStore }): Promise<void> {
    if (info.exports.length === 0) return;
    const resolver = new PromiseResolver(o.store);
    for (const e of info.exports) {
      const id = await resolver.decode(e.file);
      if (typeof id !== 'string') throw new ToilError('INTERNAL', `exportFile to ${e.url}: the value is not a file id`);
      await o.lease.hold(`export ${id} to ${e.url}`);
      await exportUrl(o.store, id, e.url);
      this.logger.info(`exported ${id} to ${e.url}`);
    }
  }

  /** Nothing to release today; kept so that callers can always pair open with close. */
  async close(): Promise<void> {}
}

/** A promise and the function that settles it. */
function settleable<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve: (v: T) => void = () => {};
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Bundles the workflow module, fetching it first when it is given by URL, and type-checks it
 * (TypeScript only) unless told not to. Bundling comes first: a syntax error is one line.
 */
async function bundleSource(
  workflow: string,
  opts: { logger: Logger; typecheck: boolean },
): Promise<{ bundle: Bundle; workflowName: string }> {
  const source = await obtainWorkflow(workflow);
  try {
    const bundle = await bundleWorkflow(source.file, source.fetched ? { name: source.name, root: path.dirname(source.file) } : {});
    if (source.fetched) opts.logger.info(`fetched the workflow from ${source.name} (${source.fetched.bytes} bytes)`);
    if (opts.typecheck && /\.[mc]?tsx?$/.test(source.file)) {
      const started = Date.now();
      await typecheckWorkflow({ file: source.file, name: source.name });
      opts.logger.debug(`type-checked ${source.name} in ${Date.now() - started} ms`);
    }
    return { bundle, workflowName: source.fetched ? source.name : path.resolve(source.file) };
  } finally {
    await source.release();
  }
}

/**
 * The failure summary: one paragraph per failed job — why it failed (for an error the job threw,
 * its message, then the workflow's own stack frames), then the last lines of its log (`|`). This
 * is the one place a failed job's error is told (the leader's log only says that it failed).
 */
export function failureSummary(
  result: Extract<LeaderResult, { ok: false }>,
  store: { locator: string; deletedBy?: string | undefined },
): string {
  const lines: string[] = [];
  if (result.killed) lines.push(`workflow stopped: ${result.reason ?? 'killed'}`);
  else if (result.failed.length > 0)
    lines.push(`workflow failed: ${result.failed.length} job(s) failed, ${result.notRun} job(s) did not run`);
  else lines.push(`workflow failed: ${result.reason ?? 'unknown reason'}`);
  for (const f of result.failed) {
    lines.push(`  job '${f.name}' (${f.id}): ${f.reason}`);
    if (f.stack) for (const l of f.stack.split('\n')) lines.push(`    ${l}`);
    if (f.logTail) for (const l of f.logTail.split('\n')) lines.push(`    | ${l}`);
  }
  lines.push(
    store.deletedBy
      ? `the job store ${store.locator} was deleted (--clean ${store.deletedBy}): a new run starts from the beginning`
      : `the job store ${store.locator} is kept: fix the problem and run again with --restart`,
  );
  return lines.join('\n');
}
