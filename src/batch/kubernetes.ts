/**
 * The `kubernetes` batch system: one batch/v1 Job per batch job in the current namespace.
 *
 * - State comes from list + watch on the workflow's label selector — one stream for Jobs and
 *   one for pods, whatever the number of jobs — resumed after a drop and re-listed after 410
 *   Gone; nothing is polled per job.
 * - Each ending is explained: exit code, OOM kill, preemption or eviction (not counted against
 *   the job's tries), image pull failure (fails fast, naming the image), unschedulable past
 *   --kubernetesPodTimeout (naming the request and the scheduler's reason), deadline.
 * - A failed pod's log tail is saved in the job store before the Job is deleted.
 * - Requests go through a rate limiter and are retried on 429/5xx/connection errors; per
 *   batch job it makes one create, one delete and, for failures only, one log read.
 * - At the end every Job of the workflow is deleted (delete-collection by label, or one by one
 *   if the Role lacks that verb).
 */
import { BatchV1Api, CoreV1Api, Watch, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { ResourceError, UsageError, errorMessage } from '../errors.js';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import { formatSize } from '../size.js';
import { EndQueue } from './endQueue.js';
import { loadClusterAccess, type ClusterAccess } from './kubeConfig.js';
import { apiCall, apiErrorInfo, KubernetesApiError } from './kubeRetry.js';
import {
  ANNOTATION_JOB_ID,
  LABEL_BATCH_ID,
  LABEL_WORKFLOW,
  buildJob,
  workflowSelector,
  type KubernetesJobOptions,
} from './kubernetesSpec.js';
import { disrupted, imageFailure, jobVerdict, podVerdict, unschedulableSince, type PodVerdict } from './podOutcome.js';
import { RateLimiter } from './rateLimiter.js';
import type { BatchJobEnd, BatchJobRequest, BatchSystem } from './types.js';

export interface KubernetesBatchOptions {
  workflowId: string;
  locator: string;
  store: JobStore;
  logger: Logger;
  owner?: string;
  image?: string;
  hostPath?: string;
  awsSecretName?: string;
  serviceAccountName?: string;
  /** Seconds a pod may stay unschedulable before its job fails. */
  podTimeoutSeconds: number;
  qps?: number;
  burst?: number;
  env?: NodeJS.ProcessEnv;
  /** Use this access instead of discovering it (tests). */
  access?: ClusterAccess;
}

interface Tracked {
  batchJobId: number;
  name: string;
  jobId: string;
  jobName: string;
  requirements: ResolvedRequirements;
  pod?: V1Pod;
  ended: boolean;
  finishing: boolean;
  unschedulable?: { since: number; message: string };
}

/** Variables passed on to workers (never credentials: those come from the mounted secret). */
const PASS_ENV = /^(AWS_REGION|AWS_DEFAULT_REGION|AWS_ENDPOINT_URL|AWS_ENDPOINT_URL_S3|AWS_PROFILE|AWS_EC2_METADATA_DISABLED|TOIL_S3_[A-Z0-9_]+)$/;

export class KubernetesBatchSystem implements BatchSystem {
  readonly name = 'kubernetes';
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;
  private readonly limiter: RateLimiter;
  private readonly ends = new EndQueue();
  private readonly tracked = new Map<number, Tracked>();
  private readonly byName = new Map<string, Tracked>();
  private nextId = 1;
  private readonly selector: string;
  private readonly aborts: AbortController[] = [];
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly namespace: string;

  private constructor(
    private readonly access: ClusterAccess,
    private readonly opts: KubernetesBatchOptions,
    private readonly spec: KubernetesJobOptions,
  ) {
    this.batch = access.kc.makeApiClient(BatchV1Api);
    this.core = access.kc.makeApiClient(CoreV1Api);
    this.limiter = new RateLimiter(opts.qps ?? 20, opts.burst ?? 40);
    this.selector = workflowSelector(opts.workflowId);
    this.log = opts.logger;
    this.namespace = access.namespace;
  }

  /**
   * Connects to the cluster (kubectl's rules), checks that it answers, and finds the leader's
   * own Job and image when the leader runs in a pod. A missing or unreachable cluster is a
   * UsageError (exit 2).
   */
  static async create(opts: KubernetesBatchOptions): Promise<KubernetesBatchSystem> {
    const env = opts.env ?? process.env;
    const access = opts.access ?? loadClusterAccess(env);
    const core = access.kc.makeApiClient(CoreV1Api);
    const batchApi = access.kc.makeApiClient(BatchV1Api);
    const server = access.kc.getCurrentCluster()?.server ?? '(in-cluster)';
    try {
      await batchApi.listNamespacedJob({ namespace: access.namespace, labelSelector: workflowSelector(opts.workflowId), limit: 1 });
    } catch (e) {
      const info = apiErrorInfo(e);
      throw new UsageError(
        info.status === undefined
          ? `cannot reach the Kubernetes API at ${server}: ${info.message}`
          : `the Kubernetes API at ${server} refused to list Jobs in namespace '${access.namespace}' (HTTP ${info.status}): ${info.message}`,
      );
    }
    let ownerJob: { name: string; uid: string } | undefined;
    let ownImage: string | undefined;
    const podName = env['POD_NAME'] ?? env['HOSTNAME'];
    if (access.inCluster && podName) {
      try {
        const pod = await core.readNamespacedPod({ name: podName, namespace: access.namespace });
        ownImage = pod.spec?.containers?.[0]?.image;
        const ref = pod.metadata?.ownerReferences?.find((r) => r.kind === 'Job');
        if (ref) ownerJob = { name: ref.name, uid: ref.uid };
      } catch (e) {
        opts.logger.warning(`cannot read the leader's own pod ${podName}: ${errorMessage(e)}; worker Jobs will not be owned by the leader's Job`);
      }
    }
    const image = opts.image ?? ownImage;
    if (!image) {
      throw new UsageError('no worker image: set TOIL_APPLIANCE_SELF to the toil-ts image the worker pods should run (inside a pod it defaults to the leader\'s own image)');
    }
    const passEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined && PASS_ENV.test(k)) passEnv[k] = v;
    if (opts.awsSecretName) {
      passEnv['AWS_SHARED_CREDENTIALS_FILE'] = '/root/.aws/credentials';
      passEnv['AWS_CONFIG_FILE'] = '/root/.aws/config';
    }
    const workerCommand = env['TOIL_KUBERNETES_WORKER_COMMAND'] ? env['TOIL_KUBERNETES_WORKER_COMMAND'].split(' ').filter((s) => s !== '') : ['toil', 'worker'];
    const spec: KubernetesJobOptions = {
      owner: opts.owner ?? env['USER'] ?? 'toil',
      workflowId: opts.workflowId,
      image,
      workerCommand,
      locator: opts.locator,
      ...(opts.hostPath ? { hostPath: opts.hostPath } : {}),
      ...(opts.awsSecretName ? { awsSecretName: opts.awsSecretName } : {}),
      ...(opts.serviceAccountName ? { serviceAccountName: opts.serviceAccountName } : {}),
      ...(ownerJob ? { ownerJob } : {}),
      env: passEnv,
    };
    const sys = new KubernetesBatchSystem(access, opts, spec);
    await sys.start();
    return sys;
  }

  private async start(): Promise<void> {
    // Leftovers of an earlier leader of this workflow (one that died): none may run alongside
    // new attempts, so they are deleted and their pods waited for before anything is issued.
    const left = await apiCall('list Jobs', this.limiter, () => this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector }));
    if (left.items.length > 0) {
      this.log.info(`deleting ${left.items.length} worker Job(s) left by an earlier leader of this workflow`);
      await this.deleteAll('left by an earlier leader');
      await this.waitForPodsGone(120_000);
    }
    void this.watchLoop('jobs');
    void this.watchLoop('pods');
    this.timer = setInterval(() => this.checkStuck(), 1000);
    this.timer.unref();
  }

  checkFits(req: ResolvedRequirements, what: string): void {
    if (req.cores <= 0 || req.memory <= 0) throw new ResourceError(`${what} asks for no cores or no memory`);
  }

  async issue(req: BatchJobRequest): Promise<number> {
    const batchJobId = this.nextId++;
    const body = buildJob({ batchJobId, jobId: req.jobId, jobName: req.jobName, requirements: req.requirements }, this.spec);
    const name = body.metadata!.name!;
    const t: Tracked = { batchJobId, name, jobId: req.jobId, jobName: req.jobName, requirements: req.requirements, ended: false, finishing: false };
    this.tracked.set(batchJobId, t);
    this.byName.set(name, t);
    try {
      let exists = false;
      await apiCall(`create Job ${name}`, this.limiter, () => this.batch.createNamespacedJob({ namespace: this.namespace, body, fieldValidation: 'Strict' }), {
        accept: (info) => {
          if (info.status !== 409) return undefined;
          exists = true;
          return {} as V1Job;
        },
        onRetry: (info, ms) => this.log.debug(`create Job ${name}: ${info.message}; retrying in ${ms} ms`),
      });
      if (exists) {
        // A retried create whose first try went through is ours; anything else is a clash.
        const found = await apiCall(`read Job ${name}`, this.limiter, () => this.batch.readNamespacedJob({ name, namespace: this.namespace }));
        if (KubernetesBatchSystem.jobIdOf(found) !== req.jobId || found.metadata?.labels?.[LABEL_WORKFLOW] !== body.metadata?.labels?.[LABEL_WORKFLOW]) {
          throw new KubernetesApiError(`create Job ${name}`, { status: 409, message: `a Job named ${name} exists and is not this workflow's` });
        }
      }
    } catch (e) {
      this.end(t, { outcome: 'failed', exitCode: null, message: errorMessage(e), countsAsAttempt: true, retryable: !(e instanceof KubernetesApiError) || e.retryable });
    }
    return batchJobId;
  }

  // ---- tracking ------------------------------------------------------------------------------

  private async watchLoop(kind: 'jobs' | 'pods'): Promise<void> {
    const path = kind === 'jobs' ? `/apis/batch/v1/namespaces/${this.namespace}/jobs` : `/api/v1/namespaces/${this.namespace}/pods`;
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!this.closed) {
      try {
        if (resourceVersion === undefined) {
          const list =
            kind === 'jobs'
              ? await apiCall('list Jobs', this.limiter, () => this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector }))
              : await apiCall('list pods', this.limiter, () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }));
          resourceVersion = list.metadata?.resourceVersion;
          for (const item of list.items) this.observe(kind, 'ADDED', item as V1Job & V1Pod);
        }
        const outcome = await this.watchOnce(kind, path, resourceVersion, (rv) => (resourceVersion = rv));
        if (outcome === 'gone') resourceVersion = undefined;
        failures = 0;
      } catch (e) {
        if (this.closed) return;
        failures++;
        const delay = Math.min(10_000, 200 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2);
        this.log.debug(`watch ${kind}: ${errorMessage(e)}; again in ${Math.round(delay)} ms`);
        if (failures > 3) resourceVersion = undefined;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** One watch request; resolves when the stream ends. 'gone' means the version expired (410). */
  private watchOnce(kind: 'jobs' | 'pods', path: string, resourceVersion: string | undefined, setVersion: (rv: string) => void): Promise<'ended' | 'gone'> {
    return new Promise((resolve, reject) => {
      let gone = false;
      const watch = new Watch(this.access.kc);
      void this.limiter
        .take()
        .then(() =>
          watch.watch(
            path,
            { labelSelector: this.selector, allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
            (type: string, obj: unknown) => {
              const o = obj as { metadata?: { resourceVersion?: string }; code?: number };
              if (type === 'ERROR') {
                if (o.code === 410) gone = true;
                return;
              }
              if (o.metadata?.resourceVersion) setVersion(o.metadata.resourceVersion);
              if (type === 'BOOKMARK') return;
              this.observe(kind, type, obj as V1Job & V1Pod);
            },
            (err: unknown) => {
              if (err && !gone) {
                const info = apiErrorInfo(err);
                if (info.status === 410) return resolve('gone');
                return reject(err instanceof Error ? err : new Error(String(err)));
              }
              resolve(gone ? 'gone' : 'ended');
            },
          ),
        )
        .then((ac) => {
          if (this.closed) ac.abort();
          else this.aborts.push(ac);
        }, reject);
    });
  }

  private trackedFor(obj: { metadata?: { name?: string; labels?: Record<string, string> } }, kind: 'jobs' | 'pods'): Tracked | undefined {
    if (kind === 'jobs') return this.byName.get(obj.metadata?.name ?? '');
    const id = Number(obj.metadata?.labels?.[LABEL_BATCH_ID]);
    return Number.isInteger(id) ? this.tracked.get(id) : undefined;
  }

  private observe(kind: 'jobs' | 'pods', type: string, obj: V1Job & V1Pod): void {
    const t = this.trackedFor(obj, kind);
    if (!t || t.ended) return;
    if (kind === 'pods') {
      if (type === 'DELETED') return;
      this.observePod(t, obj);
      return;
    }
    const verdict = jobVerdict(obj);
    if (verdict) void this.finish(t, verdict);
  }

  private observePod(t: Tracked, pod: V1Pod): void {
    const previous = t.pod;
    // Keep the newest pod of the Job (a preempted pod is replaced by a new one).
    if (previous && previous.metadata?.name !== pod.metadata?.name) {
      const prevTime = new Date(previous.metadata?.creationTimestamp ?? 0).getTime();
      const curTime = new Date(pod.metadata?.creationTimestamp ?? 0).getTime();
      if (curTime < prevTime) return;
    }
    t.pod = pod;
    const phase = pod.status?.phase;
    if (phase === 'Failed' && disrupted(pod) && previous?.metadata?.name === pod.metadata?.name && previous?.status?.phase !== 'Failed') {
      this.log.warning(`worker pod ${pod.metadata?.name} of job '${t.jobName}' (${t.jobId}) was taken away (${disrupted(pod)}); it will run again without using up a try`);
    }
    const img = imageFailure(pod);
    if (img) {
      void this.finish(t, img, true);
      return;
    }
    const u = unschedulableSince(pod);
    if (u) t.unschedulable ??= u;
    else delete t.unschedulable;
  }

  private checkStuck(): void {
    const now = Date.now();
    for (const t of this.tracked.values()) {
      if (t.ended || t.finishing || !t.unschedulable) continue;
      if (now - t.unschedulable.since < this.opts.podTimeoutSeconds * 1000) continue;
      const r = t.requirements;
      const asked = `${r.cores} cores, ${formatSize(r.memory)} memory, ${formatSize(r.disk)} disk${gpuCount(r) ? `, ${gpuCount(r)} GPU(s)` : ''}${r.preemptible ? ', preemptible' : ''}`;
      void this.finish(
        t,
        {
          outcome: 'unschedulable',
          exitCode: null,
          message: `no node could take the worker pod for ${this.opts.podTimeoutSeconds}s (--kubernetesPodTimeout); it asks for ${asked}; the scheduler says: ${t.unschedulable.message}`,
          countsAsAttempt: true,
          retryable: false,
        },
        true,
      );
    }
  }

  /** Ends a tracked batch job: saves a failed pod's log tail, deletes the Job, reports. */
  private async finish(t: Tracked, verdictIn: PodVerdict, deleteNow = false): Promise<void> {
    if (t.ended || t.finishing) return;
    t.finishing = true;
    let verdict = verdictIn;
    const pod = t.pod;
    if (!deleteNow && pod && (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded')) verdict = podVerdict(pod);
    let outputTail: string | undefined;
    if (verdict.outcome !== 'succeeded' && pod?.metadata?.name && pod.spec?.nodeName) {
      try {
        outputTail = await apiCall(`read the log of pod ${pod.metadata.name}`, this.limiter, () =>
          this.core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: this.namespace, tailLines: 40 }),
        );
        if (outputTail && (await this.opts.store.readJobLog(t.jobId)) === undefined) {
          await this.opts.store.writeJobLog(t.jobId, outputTail);
        }
      } catch (e) {
        this.log.debug(`cannot keep the log of pod ${pod.metadata.name}: ${errorMessage(e)}`);
      }
    }
    await this.deleteJob(t.name);
    this.end(t, verdict, outputTail);
  }

  private end(t: Tracked, v: PodVerdict, outputTail?: string): void {
    if (t.ended) return;
    t.ended = true;
    this.tracked.delete(t.batchJobId);
    this.byName.delete(t.name);
    const end: BatchJobEnd = {
      batchJobId: t.batchJobId,
      jobId: t.jobId,
      outcome: v.outcome,
      exitCode: v.exitCode,
      message: v.message,
      countsAsAttempt: v.countsAsAttempt,
      ...(v.retryable ? {} : { final: true }),
      ...(outputTail ? { outputTail } : {}),
    };
    this.ends.push(end);
  }

  private async deleteJob(name: string): Promise<void> {
    try {
      await apiCall(`delete Job ${name}`, this.limiter, () =>
        this.batch.deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0 }).then(() => true),
        { accept: (info) => (info.status === 404 ? true : undefined) },
      );
    } catch (e) {
      this.log.warning(`cannot delete Job ${name}: ${errorMessage(e)}`);
    }
  }

  /** Deletes every Job (and pod) of the workflow. */
  private async deleteAll(why: string): Promise<void> {
    try {
      await apiCall('delete the workflow\'s Jobs', this.limiter, () =>
        this.batch.deleteCollectionNamespacedJob({ namespace: this.namespace, labelSelector: this.selector, propagationPolicy: 'Background', gracePeriodSeconds: 0 }),
      );
      return;
    } catch (e) {
      if (!(e instanceof KubernetesApiError) || (e.info.status !== 403 && e.info.status !== 405)) {
        this.log.warning(`cannot delete the workflow's Jobs (${why}): ${errorMessage(e)}`);
        return;
      }
    }
    // The Role lacks deletecollection: one by one.
    const list = await apiCall('list Jobs', this.limiter, () => this.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: this.selector }));
    for (const j of list.items) if (j.metadata?.name) await this.deleteJob(j.metadata.name);
  }

  /** Waits until the workflow has no pods left (after deleting its Jobs). */
  private async waitForPodsGone(ms: number): Promise<void> {
    const until = Date.now() + ms;
    for (;;) {
      const pods = await apiCall('list pods', this.limiter, () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector: this.selector }));
      if (pods.items.length === 0) return;
      if (Date.now() > until) {
        this.log.warning(`${pods.items.length} pod(s) of an earlier leader are still terminating; going on`);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  async kill(batchJobIds: number[]): Promise<void> {
    for (const id of batchJobIds) {
      const t = this.tracked.get(id);
      if (!t || t.ended) continue;
      t.finishing = true;
      await this.deleteJob(t.name);
      this.end(t, { outcome: 'killed', exitCode: null, message: 'killed by the leader', countsAsAttempt: false, retryable: true });
    }
  }

  nextEnd(timeoutMs: number): Promise<BatchJobEnd | undefined> {
    return this.ends.next(timeoutMs);
  }

  issuedCount(): number {
    return this.tracked.size;
  }

  runningCount(): number {
    let n = 0;
    for (const t of this.tracked.values()) if (t.pod?.status?.phase === 'Running') n++;
    return n;
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const a of this.aborts) a.abort();
    await this.deleteAll('at the end of the workflow');
  }

  /** Job id of a Job object (annotations), for tests and tools. */
  static jobIdOf(job: V1Job): string | undefined {
    return job.metadata?.annotations?.[ANNOTATION_JOB_ID];
  }
}

/**
 * Deletes the worker Jobs of a workflow whose leader is gone (for `toil clean`). Returns how
 * many there were, or undefined when no cluster is configured.
 */
export async function deleteWorkflowJobs(workflowId: string, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<number | undefined> {
  let access: ClusterAccess;
  try {
    access = loadClusterAccess(env);
  } catch {
    return undefined;
  }
  const api = access.kc.makeApiClient(BatchV1Api);
  const limiter = new RateLimiter(20, 40);
  const selector = workflowSelector(workflowId);
  const list = await apiCall('list Jobs', limiter, () => api.listNamespacedJob({ namespace: access.namespace, labelSelector: selector }), { policy: { attempts: 3, baseMs: 200, maxMs: 2000 } });
  for (const j of list.items) {
    const name = j.metadata?.name;
    if (!name) continue;
    await apiCall(`delete Job ${name}`, limiter, () => api.deleteNamespacedJob({ name, namespace: access.namespace, propagationPolicy: 'Background' }).then(() => true), {
      accept: (info) => (info.status === 404 ? true : undefined),
    }).catch((e: unknown) => logger.warning(errorMessage(e)));
  }
  return list.items.length;
}
