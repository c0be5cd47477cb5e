/**
 * The `kubernetes` batch system: one batch/v1 Job per batch job in the current namespace. This
 * module ties the pieces together:
 *
 * - `kubeCluster.ts`: the cluster probe, the leader's own pod, the worker Job options;
 * - `listWatch.ts`: list + watch on the workflow's label selector, one stream for Jobs and
 *   one for pods whatever the number of jobs, resumed after a drop and re-listed after 410;
 *   nothing is polled per job;
 * - `jobTracker.ts`: what the streams mean for each batch job (pure); every ending explained by
 *   `podOutcome.ts`: exit code, OOM kill, eviction for local storage over the job's disk
 *   requirement (uses up a try), preemption or node-pressure eviction (not counted against the
 *   job's tries, up to --kubernetesMaxDisruptions times; one more fails the job), an image
 *   that can never be pulled (not found, invalid name: fails fast), a pull failing otherwise
 *   past --kubernetesPodTimeout (a transient ErrImagePull is not final), unschedulable past
 *   --kubernetesPodTimeout, a container not created past --kubernetesPodTimeout (a failed
 *   mount or a config error; the pod's events are read once, then, for the kubelet's message),
 *   deadline, the worker Job deleted by someone else (a DELETED event, or missing from a
 *   re-list);
 * - `podLogs.ts`: a failed pod's log tail (its last lines, bounded), read before its Job is
 *   deleted; the leader keeps it as the attempt's log when the worker could not save one;
 * - `kubeCleanup.ts`: deleting one Job, all of the workflow's, and `toil clean`'s sweep;
 * - `kubePlacement.ts`: the job store's record of where the Jobs are, written before the first;
 * - `leftovers.ts`: an earlier leader's Jobs deleted and its pods waited for, before anything.
 *
 * Requests go through a rate limiter and are retried on 429/5xx/connection errors. Per batch
 * job it makes one create, one delete and, for failures only, one log read (a few when its last
 * lines are longer than the byte bound), one read of its pods when its Job is seen failed
 * before its pod is (the streams may lag), and one events list for a pod whose container is not
 * created past the pod timeout; per workflow, the probe, a list of leftover Jobs and one of
 * leftover pods, a list and a watch per stream, and the final delete-collection.
 */
import { randomInt } from 'node:crypto';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { ResourceError, errorMessage } from '../errors.js';
import type { ResolvedRequirements } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import { backoffDelayMs, type BackoffPolicy } from '../backoff.js';
import { settledWithin } from '../concurrency.js';
import { EndQueue } from './endQueue.js';
import { deleteAllJobs, deleteJob } from './kubeCleanup.js';
import {
  findLeaderSelf,
  kubeScope,
  listJobs,
  listPods,
  probeCluster,
  workerJobOptions,
  type KubeScope,
  type WorkerJobSettings,
} from './kubeCluster.js';
import { loadClusterAccess, type ClusterAccess } from './kubeConfig.js';
export { loadClusterAccess };
import { apiCall, KubernetesApiError } from './kubeRetry.js';
import {
  ANNOTATION_JOB_ID,
  LABEL_BATCH_ID,
  LABEL_WORKFLOW,
  buildJob,
  workflowSelector,
  type KubernetesJobOptions,
} from './kubernetesSpec.js';
import { JobTracker, type TrackedJob, type TrackerAction } from './jobTracker.js';
import { clearLeftovers, LEFTOVER_WAIT_MS } from './leftovers.js';
import { ListWatch, namedObject, type ListWatchSource, type WatchEventType } from './listWatch.js';
import { readPodLogTail } from './podLogs.js';
import { readFailedCreates, readPodEvents } from './podEvents.js';
import { notCreatedInTime, readRefusal, type Refusal } from './createRefusal.js';
import { placementOf, writePlacement, type Placement } from './kubePlacement.js';
import type { PodVerdict } from './podOutcome.js';
import type { BatchJobEnd, BatchJobRequest, BatchSystem, ShutdownOptions } from './types.js';

export { deleteWorkflowJobs } from './kubeCleanup.js';
export { accessForServer } from './kubeConfig.js';
export { readPlacement } from './kubePlacement.js';

export interface KubernetesBatchOptions extends WorkerJobSettings {
  store: JobStore;
  logger: Logger;
  /** Seconds a pod may stay unschedulable, or its container not created (failed mount, config error), before its job fails. */
  podTimeoutSeconds: number;
  /** How many times a job's pod may be taken away without using up a try (default 5); one more fails the job. */
  maxDisruptions?: number;
  /** Seconds to wait for an earlier leader's pods to go before issuing anything (default 120). */
  restartWaitSeconds?: number;
  qps?: number;
  burst?: number;
  env?: NodeJS.ProcessEnv;
  /** Use this access instead of discovering it (tests). */
  access?: ClusterAccess;
}

/** Waiting for a quota on Jobs to free up: 2 s, doubling to 30 s. */
const QUOTA_BACKOFF: BackoffPolicy = { baseMs: 2000, maxMs: 30_000 };

/** How long shutdown waits for creates already sent (a request cannot be recalled): well inside a pod's grace period. */
const CREATE_WAIT_MS = 10_000;

/** A leader's incarnation: 6 random [a-z0-9] (36⁶, about 2·10⁹ of them), in its Job names and batch ids. */
function newIncarnation(): string {
  const digits = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 6 }, () => digits[randomInt(digits.length)]).join('');
}

export class KubernetesBatchSystem implements BatchSystem {
  readonly name = 'kubernetes';
  private readonly ends = new EndQueue();
  private readonly tracker: JobTracker;
  private readonly watches: Array<{ stop(): void }> = [];
  /** The Jobs' list + watch, also read again by `resync`. */
  private jobWatch: ListWatch<V1Job> | undefined;
  /** Creates under way (and the deletion that follows one that went through too late): shutdown waits for them. */
  private readonly creating = new Set<Promise<void>>();
  /** Creates waiting to be tried again (a full quota on Jobs). */
  private readonly retries = new Set<NodeJS.Timeout>();
  /** Aborted at shutdown: no create is tried again after it. */
  private readonly stopping = new AbortController();
  private nextId = 1;
  private closed = false;
  /** The one shutdown: later calls wait for it. */
  private shutdownDone: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Writing the record of where the Jobs go (kubePlacement.ts), once, before the first Job. */
  private recorded: Promise<void> | undefined;

  private constructor(
    private readonly scope: KubeScope,
    private readonly opts: KubernetesBatchOptions,
    private readonly spec: KubernetesJobOptions,
    private readonly placement: Placement,
  ) {
    this.tracker = new JobTracker({ maxDisruptions: opts.maxDisruptions ?? 5 });
  }

  /**
   * Connects to the cluster (kubectl's rules), checks that it answers, and finds the leader's
   * own Job and image when the leader runs in a pod. A missing or unreachable cluster is a
   * UsageError (exit 2).
   */
  static async create(opts: KubernetesBatchOptions): Promise<KubernetesBatchSystem> {
    const env = opts.env ?? process.env;
    const access = opts.access ?? loadClusterAccess(env);
    await probeCluster(access, workflowSelector(opts.workflowId));
    const self = await findLeaderSelf(access, env, opts.logger);
    if (self.imageNote && !opts.image) opts.logger.info(self.imageNote);
    const spec = { ...workerJobOptions(opts, self, env), incarnation: newIncarnation() };
    if (spec.identity && spec.awsSecretName) {
      opts.logger.warning(
        `worker pods get both the secret '${spec.awsSecretName}' (TOIL_AWS_SECRET_NAME) and the leader's web identity (AWS_ROLE_ARN): the AWS SDK reads the secret's keys first`,
      );
    }
    const scope = kubeScope(access, { workflowId: opts.workflowId, log: opts.logger, qps: opts.qps, burst: opts.burst });
    const sys = new KubernetesBatchSystem(scope, opts, spec, placementOf(access, opts.workflowId));
    await sys.start();
    return sys;
  }

  private async start(): Promise<void> {
    // Leftovers of an earlier leader of this workflow (one that died): none may run alongside
    // new attempts, so they are deleted and their pods waited for before anything is issued.
    await clearLeftovers(this.scope, (this.opts.restartWaitSeconds ?? LEFTOVER_WAIT_MS / 1000) * 1000);
    this.jobWatch = this.watch(
      this.jobSource(),
      (type, job) => this.act(this.tracker.onJob(type, job)),
      (jobs, sentAt) => this.act(this.tracker.onJobList(jobs, sentAt)),
    );
    this.watch(this.podSource(), (type, pod) => this.act(this.tracker.onPod(type, pod)));
    this.timer = setInterval(() => this.act(this.tracker.stuck(Date.now(), this.opts.podTimeoutSeconds)), 1000);
    this.timer.unref();
  }

  private jobSource(): ListWatchSource<V1Job> {
    const s = this.scope;
    return {
      what: 'jobs',
      path: `/apis/batch/v1/namespaces/${s.namespace}/jobs`,
      labelSelector: s.selector,
      list: async () => {
        const list = await listJobs(s);
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
      },
      parse: (obj) => namedObject<V1Job>(obj),
    };
  }

  private podSource(): ListWatchSource<V1Pod> {
    const s = this.scope;
    return {
      what: 'pods',
      path: `/api/v1/namespaces/${s.namespace}/pods`,
      labelSelector: s.selector,
      list: async () => {
        const list = await listPods(s);
        return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
      },
      parse: (obj) => namedObject<V1Pod>(obj),
    };
  }

  private watch<T>(
    source: ListWatchSource<T>,
    onEvent: (type: WatchEventType, obj: T) => void,
    onList?: (items: T[], sentAt: number) => void,
  ): ListWatch<T> {
    const log = (m: string) => this.scope.log.debug(m);
    const w = new ListWatch<T>(source, { kc: this.scope.kc, limiter: this.scope.limiter, onEvent, log, ...(onList ? { onList } : {}) });
    this.watches.push(w);
    w.start();
    return w;
  }

  private act(actions: TrackerAction[]): void {
    // After shutdown the bulk delete has ended every Job: nothing is left to explain or delete.
    if (this.closed) return;
    for (const a of actions) {
      if (a.kind === 'warn') this.scope.log.warning(a.message);
      else if (a.kind === 'inspect') void this.inspect(a.job, a.pod);
      else if (a.kind === 'inspectCreates') void this.inspectCreates();
      else void this.finish(a.job, a.verdict, a.deleteNow);
    }
  }

  /** Reads the events of a pod whose container has not started for the pod timeout (one list request). */
  private async inspect(t: TrackedJob, pod: V1Pod): Promise<void> {
    const events = await readPodEvents(this.scope, pod);
    this.act(this.tracker.inspected(t, events, { now: Date.now(), podTimeoutSeconds: this.opts.podTimeoutSeconds }));
  }

  /** Reads why the Job controller could not create pods, for Jobs that have none (one list request). */
  private async inspectCreates(): Promise<void> {
    const events = await readFailedCreates(this.scope);
    this.act(this.tracker.createsInspected(events, { now: Date.now(), podTimeoutSeconds: this.opts.podTimeoutSeconds }));
  }

  checkFits(req: ResolvedRequirements, what: string): void {
    if (req.cores <= 0 || req.memory <= 0) throw new ResourceError(`${what} asks for no cores or no memory`);
  }

  async issue(req: BatchJobRequest): Promise<number> {
    const batchJobId = this.nextId++;
    if (this.closed) {
      this.ends.push({
        batchJobId,
        jobId: req.jobId,
        outcome: 'killed',
        exitCode: null,
        message: 'the batch system is shut down',
        countsAsAttempt: false,
      });
      return batchJobId;
    }
    await this.record();
    const body = buildJob(
      {
        batchJobId,
        jobId: req.jobId,
        jobName: req.jobName,
        requirements: req.requirements,
        ...(req.worker.executor !== undefined ? { executor: req.worker.executor } : {}),
      },
      this.spec,
    );
    const t = this.tracker.add({
      batchJobId,
      batchLabel: body.metadata!.labels![LABEL_BATCH_ID]!,
      name: body.metadata!.name!,
      jobId: req.jobId,
      jobName: req.jobName,
      requirements: req.requirements,
      ...(req.worker.executor !== undefined ? { executor: req.worker.executor } : {}),
    });
    await this.startCreate(t, body);
    return batchJobId;
  }

  /** Runs `create`, known to shutdown while under way. */
  private startCreate(t: TrackedJob, body: V1Job): Promise<void> {
    const creating = this.create(t, body).finally(() => this.creating.delete(creating));
    this.creating.add(creating);
    return creating;
  }

  /**
   * Creates the worker Job of a tracked batch job. A create whose last try got no answer may
   * have gone through: its Job is deleted before the failure is reported, so that no worker runs
   * beside the next try. A create that went through after shutdown began (the bulk delete may
   * have run before the Job existed) is deleted at once: no worker outlives its leader's
   * shutdown, nor runs beside a successor.
   */
  private async create(t: TrackedJob, body: V1Job): Promise<void> {
    try {
      await this.createJob(body, t.jobId);
      this.tracker.created(t);
    } catch (e) {
      const quota = e instanceof KubernetesApiError && e.info.status === 403 ? readRefusal(e.info.message) : undefined;
      if (quota?.kind === 'quota' && !this.closed) return this.createLater(t, body, quota);
      const answered = e instanceof KubernetesApiError && e.info.status !== undefined && e.info.status < 500;
      if (!answered) await deleteJob(this.scope, t.name);
      const retryable = !(e instanceof KubernetesApiError) || e.retryable;
      this.report(t, { outcome: 'failed', exitCode: null, message: errorMessage(e), countsAsAttempt: true, retryable });
    }
    if (this.closed) await deleteJob(this.scope, t.name);
  }

  /** Records where the Jobs go, for `toil clean`; a failure is a warning, and tried again at the next Job. */
  private record(): Promise<void> {
    this.recorded ??= writePlacement(this.opts.store, this.placement).catch((e: unknown) => {
      this.recorded = undefined;
      this.scope.log.warning(`cannot record where the worker Jobs run (for 'toil clean'): ${errorMessage(e)}`);
    });
    return this.recorded;
  }

  /**
   * A quota on Jobs refused the create: it is tried again as the quota may free up (2 s, doubling
   * to 30 s), shown as waiting for quota, until the pod timeout from the first refusal.
   */
  private createLater(t: TrackedJob, body: V1Job, refusal: Refusal): void {
    const refusals = this.tracker.jobRefused(t, refusal);
    if (Date.now() - (t.refused?.since ?? Date.now()) >= this.opts.podTimeoutSeconds * 1000) {
      this.report(t, notCreatedInTime(refusal, this.opts.podTimeoutSeconds));
      return;
    }
    const delay = backoffDelayMs(refusals, QUOTA_BACKOFF);
    const timer = setTimeout(() => {
      this.retries.delete(timer);
      if (!this.closed && !t.ended) void this.startCreate(t, body);
    }, delay);
    this.retries.add(timer);
  }

  /** Creates a worker Job; a 409 is fine when the Job is this one (an earlier try went through). */
  private async createJob(body: V1Job, jobId: string): Promise<void> {
    const s = this.scope;
    const name = body.metadata!.name!;
    let exists = false;
    await apiCall(
      `create Job ${name}`,
      s.limiter,
      () => s.batch.createNamespacedJob({ namespace: s.namespace, body, fieldValidation: 'Strict' }),
      {
        accept: (info) => {
          if (info.status !== 409) return undefined;
          exists = true;
          return {} as V1Job;
        },
        onRetry: (info, ms) => s.log.debug(`create Job ${name}: ${info.message}; retrying in ${ms} ms`),
        signal: this.stopping.signal,
      },
    );
    if (!exists) return;
    const found = await apiCall(`read Job ${name}`, s.limiter, () => s.batch.readNamespacedJob({ name, namespace: s.namespace }));
    const labels = found.metadata?.labels ?? {};
    if (
      KubernetesBatchSystem.jobIdOf(found) !== jobId ||
      labels[LABEL_WORKFLOW] !== body.metadata?.labels?.[LABEL_WORKFLOW] ||
      labels[LABEL_BATCH_ID] !== body.metadata?.labels?.[LABEL_BATCH_ID]
    ) {
      throw new KubernetesApiError(`create Job ${name}`, { status: 409, message: `a Job named ${name} exists and is not this workflow's` });
    }
  }

  /** Ends a tracked batch job: saves a failed pod's log tail, deletes the Job, reports. */
  private async finish(t: TrackedJob, verdictIn: PodVerdict, deleteNow: boolean): Promise<void> {
    if (!this.tracker.claim(t)) return;
    // A Complete Job's pod succeeded: only a failure needs the pod's own account.
    if (!deleteNow && verdictIn.outcome !== 'succeeded' && !this.tracker.podEnded(t)) await this.readPods(t);
    const verdict = this.tracker.settle(t, verdictIn, deleteNow);
    if (this.closed) return;
    const outputTail = verdict.outcome !== 'succeeded' ? await readPodLogTail(this.scope, t.pod) : undefined;
    await deleteJob(this.scope, t.name);
    this.report(t, verdict, outputTail);
  }

  /**
   * Reads a Job's pods once, for a Job seen ended before its pod was (the streams are separate):
   * one list request, only then. If it fails, the Job's own verdict stands.
   */
  private async readPods(t: TrackedJob): Promise<void> {
    const s = this.scope;
    const labelSelector = `${s.selector},${LABEL_BATCH_ID}=${t.batchLabel}`;
    try {
      const list = await listPods(s, { what: `list the pods of Job ${t.name}`, selector: labelSelector });
      this.tracker.notePods(t, list.items);
    } catch (e) {
      s.log.debug(`cannot read the pods of Job ${t.name}: ${errorMessage(e)}`);
    }
  }

  private report(t: TrackedJob, verdict: PodVerdict, outputTail?: string): void {
    const end = this.tracker.end(t, verdict, outputTail);
    if (end) this.ends.push(end);
  }

  async kill(batchJobIds: number[]): Promise<void> {
    for (const id of batchJobIds) {
      const t = this.tracker.get(id);
      if (!t || t.ended) continue;
      t.finishing = true;
      if (!this.closed) await deleteJob(this.scope, t.name);
      this.report(t, { outcome: 'killed', exitCode: null, message: 'killed by the leader', countsAsAttempt: false, retryable: true });
    }
  }

  nextEnd(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined> {
    return this.ends.next(timeoutMs, signal);
  }

  issuedCount(): number {
    return this.tracker.size;
  }

  runningCount(): number {
    return this.tracker.running();
  }

  knows(batchJobId: number): boolean {
    return this.tracker.get(batchJobId) !== undefined || this.ends.has(batchJobId);
  }

  /**
   * Lists the workflow's Jobs again (one request) when the tracker has reason to doubt the watch
   * (a Job never seen, or a pod ended with no ending of its Job): an ending the watch missed is
   * found. Otherwise nothing is sent.
   */
  async resync(): Promise<void> {
    if (this.closed || !this.jobWatch || !this.tracker.needsResync()) return;
    try {
      await this.jobWatch.resync();
    } catch (e) {
      this.scope.log.debug(`cannot list the workflow's Jobs again: ${errorMessage(e)}`);
    }
  }

  waitingFor(): string | undefined {
    return this.tracker.waitingFor();
  }

  /**
   * The bulk delete comes first and alone: no log is read and no Job is deleted one by one
   * after it (see kubeCleanup.ts for why this holds for any number of Jobs). Every call
   * resolves when the first one's delete is done.
   */
  shutdown(opts: ShutdownOptions = {}): Promise<void> {
    this.shutdownDone ??= this.stopAll(opts);
    return this.shutdownDone;
  }

  private async stopAll(opts: ShutdownOptions): Promise<void> {
    this.closed = true;
    this.stopping.abort();
    for (const r of this.retries) clearTimeout(r);
    if (this.timer) clearInterval(this.timer);
    for (const w of this.watches) w.stop();
    if (!opts.leaveJobs) await deleteAllJobs(this.scope, 'at the end of the workflow');
    // Creates still under way delete what they made (see `create`); wait for them, within bounds.
    if (this.creating.size > 0) await settledWithin([...this.creating], CREATE_WAIT_MS);
  }

  /** Job id of a Job object (annotations), for tests and tools. */
  static jobIdOf(job: V1Job): string | undefined {
    return job.metadata?.annotations?.[ANNOTATION_JOB_ID];
  }
}
