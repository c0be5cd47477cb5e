/**
 * The Job controller: creates a Job's pods (with the job-tracking finalizer) as parallelism and
 * completions call for, counts finished ones into succeeded/failed as the pod failure policy
 * says, backs off between retries, and sets the Job's conditions and events.
 */
import { info, now, type Registry } from './registry.js';
import { clone, type Obj } from './store.js';
import type { Recorder } from './events.js';
import { cond, deleteIfPresent, hasCond, isTerminal, removeFinalizer, setCondition } from './objects.js';

const POD = info('', 'pods');
const JOB = info('batch', 'jobs');
const TRACKING = 'batch.kubernetes.io/job-tracking';

export interface JobControllerOptions {
  /** first back-off before re-creating a failed Job pod (Kubernetes: 10 s, doubling, max 6 min) */
  jobBackoffBaseMs: number;
  /** longest wait before a Job whose pod creates were refused is synced again (Kubernetes: 60 s) */
  jobApiBackoffMaxMs: number;
  /** Jobs whose ending is never recorded, once they have a pod (faults.loseJobEndings) */
  endingLost: (job: Obj) => boolean;
}

/** One Job being synced: the object, its spec, the status being built, and whether it had finished. */
interface JobSync {
  job: Obj;
  jobObj: Obj;
  spec: Obj;
  st: Obj;
  finished: boolean;
}
interface PodTally {
  failJob?: { reason: string; msg: string };
  newlyFailed: number;
  toRelease: Obj[];
}

/** A pod the Job counts as failed: Failed, or deleted before it could succeed (not yet running). */
const isFailedPod = (p: Obj): boolean =>
  p.status?.phase === 'Failed' ||
  (!!p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && (!p.spec.nodeName || p.status?.phase === 'Pending'));

/** Completions needed: spec.completions; for work-queue Jobs, what succeeded once every pod is done (else never). */
function completionsOf(spec: Obj, st: Obj, pods: Obj[]): number {
  const workQueue = spec.completions === undefined || spec.completions === null;
  if (!workQueue) return spec.completions;
  return (st.succeeded ?? 0) > 0 && pods.every((p) => isTerminal(p) || p.metadata.deletionTimestamp) ? (st.succeeded ?? 0) : Infinity;
}

/**
 * The Job controller's work queue retries a Job whose sync failed (a pod create refused: quota,
 * Pod Security, a missing service account) after 1 s, doubling to 1 min (`jobApiBackoffMaxMs`),
 * until a sync succeeds; a change to one of the Job's pods brings the next sync forward, as its
 * pod events do.
 */
const API_BACKOFF_FIRST_MS = 1000;
const SYNC_BATCH_MS = 1000;

/** The Job's pods as far as a change to them should trigger a sync: uid, phase, deletion. */
const podStates = (pods: Obj[]): string =>
  pods.map((p) => `${String(p.metadata.uid)}:${String(p.status?.phase)}:${String(p.metadata.deletionTimestamp ?? '')}`).join(',');

export class JobController {
  private lastFailure = new Map<string, number>();
  /** Jobs whose last pod creates were refused: failures so far, retry time, and their pods then */
  private apiBackoff = new Map<string, { failures: number; at: number; until: number; pods: string }>();
  constructor(
    private reg: Registry,
    private rec: Recorder,
    private opts: JobControllerOptions,
  ) {}

  async sync(): Promise<void> {
    const store = this.reg.store;
    const podsByOwner = new Map<string, Obj[]>();
    for (const p of store.list('pods')) {
      const ref = ((p.metadata.ownerReferences ?? []) as Obj[]).find((r) => r.controller && r.kind === 'Job');
      if (ref) {
        const l = podsByOwner.get(ref.uid) ?? [];
        l.push(p);
        podsByOwner.set(ref.uid, l);
      } else if ((p.metadata.finalizers ?? []).includes(TRACKING)) {
        // orphaned pod (its Job deleted with propagation Orphan): nothing will count it, so the
        // job controller releases it at once, running or not, as the real one does
        await removeFinalizer(this.reg, POD, p, TRACKING);
      }
    }
    for (const j of store.list('batch/jobs')) {
      const pods = podsByOwner.get(j.metadata.uid) ?? [];
      const finished = hasCond(j, 'Complete') || hasCond(j, 'Failed');
      if (finished && !pods.some((p) => !isTerminal(p) || (p.metadata.finalizers ?? []).includes(TRACKING))) continue;
      // a lost ending: the Job keeps the status it had when its pod was made, whatever the pod does
      if (pods.length > 0 && this.opts.endingLost(j)) continue;
      await this.syncJob(j, pods);
    }
    // pods whose Job is gone: released whatever their phase (the garbage collector deletes them)
    for (const [uid, pods] of podsByOwner) {
      if (store.byUID(uid)) continue;
      for (const p of pods) if ((p.metadata.finalizers ?? []).includes(TRACKING)) await removeFinalizer(this.reg, POD, p, TRACKING);
    }
  }

  private podFailureAction(job: Obj, p: Obj): { action: string; index: number; msg: string } | undefined {
    const rules = (job.spec.podFailurePolicy?.rules ?? []) as Obj[];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.onExitCodes) {
        const e = r.onExitCodes as Obj;
        for (const cs of (p.status?.containerStatuses ?? []) as Obj[]) {
          if (e.containerName && e.containerName !== cs.name) continue;
          const code = cs.state?.terminated?.exitCode;
          if (code === undefined || code === 0) continue;
          const inList = (e.values as number[]).includes(code);
          if ((e.operator === 'In' && inList) || (e.operator === 'NotIn' && !inList)) {
            return {
              action: r.action,
              index: i,
              msg: `Container ${String(cs.name)} for pod ${String(p.metadata.namespace)}/${String(p.metadata.name)} failed with exit code ${String(code)} matching ${String(r.action)} rule at index ${i}`,
            };
          }
        }
      }
      if (r.onPodConditions) {
        for (const pat of r.onPodConditions as Obj[]) {
          const c = (p.status?.conditions ?? []).find((x: Obj) => x.type === pat.type && x.status === (pat.status ?? 'True'));
          if (c)
            return {
              action: r.action,
              index: i,
              msg: `Pod ${String(p.metadata.namespace)}/${String(p.metadata.name)} has condition ${String(pat.type)} matching ${String(r.action)} rule at index ${i}`,
            };
        }
      }
    }
    return undefined;
  }

  private async syncJob(job: Obj, pods: Obj[]): Promise<void> {
    const spec = job.spec as Obj;
    const s: JobSync = {
      job,
      jobObj: { ...job, kind: 'Job', apiVersion: 'batch/v1' },
      spec,
      st: clone((job.status ?? {}) as Obj),
      finished: hasCond(job, 'Complete') || hasCond(job, 'Failed'),
    };
    const tally = this.tallyFinished(s, pods);
    if (tally.newlyFailed) this.lastFailure.set(job.metadata.uid, Date.now());
    const active = pods.filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp);
    const terminating = pods.filter((p) => !!p.metadata.deletionTimestamp && !isTerminal(p));
    if (!s.finished && !spec.suspend) s.st.startTime ??= now();
    const completions = completionsOf(spec, s.st, pods);
    let conditions = this.judge(s, tally.failJob, completions);
    const failing = conditions.find((c) => c.type === 'FailureTarget' && c.status === 'True');
    const succeeding = conditions.some((c) => c.type === 'SuccessCriteriaMet' && c.status === 'True');
    if (failing || succeeding || s.finished) {
      for (const p of active) deleteIfPresent(this.reg, POD, p, { policy: 'Background' });
    }
    if (!s.finished && active.length === 0 && terminating.length === 0) conditions = this.conclude(s, conditions, failing, succeeding);
    const created =
      failing || succeeding
        ? 0
        : await this.createDue(s, { active: active.length, terminating: terminating.length, completions, pods: podStates(pods) });
    await this.writeJobStatus(s, conditions, { active, terminating: terminating.length, created });
    for (const p of tally.toRelease) await removeFinalizer(this.reg, POD, p, TRACKING);
  }

  /** Counts finished pods still carrying the tracking finalizer into succeeded/failed, as the pod failure policy says. */
  private tallyFinished({ job, spec, st }: JobSync, pods: Obj[]): PodTally {
    const tally: PodTally = { newlyFailed: 0, toRelease: [] };
    for (const p of pods) {
      if (!(p.metadata.finalizers ?? []).includes(TRACKING)) continue;
      if (p.status?.phase === 'Succeeded') {
        st.succeeded = (st.succeeded ?? 0) + 1;
        tally.toRelease.push(p);
      } else if (isFailedPod(p)) {
        const a = spec.podFailurePolicy ? this.podFailureAction(job, p) : undefined;
        if (a?.action !== 'Ignore') {
          st.failed = (st.failed ?? 0) + 1;
          tally.newlyFailed++;
          if (a?.action === 'FailJob' && !tally.failJob) tally.failJob = { reason: 'PodFailurePolicy', msg: a.msg };
        }
        tally.toRelease.push(p);
      }
    }
    return tally;
  }

  /** Sets FailureTarget (pod failure policy, backoff limit, deadline) or SuccessCriteriaMet, once. */
  private judge({ job, jobObj, spec, st, finished }: JobSync, failJob: PodTally['failJob'], completions: number): Obj[] {
    const conditions = (st.conditions ?? []) as Obj[];
    if (finished || hasCond(job, 'FailureTarget') || hasCond(job, 'SuccessCriteriaMet')) return conditions;
    let failure = failJob;
    if (!failure && (st.failed ?? 0) > (spec.backoffLimit ?? 6))
      failure = { reason: 'BackoffLimitExceeded', msg: 'Job has reached the specified backoff limit' };
    if (
      !failure &&
      spec.activeDeadlineSeconds &&
      st.startTime &&
      Date.now() - Date.parse(st.startTime) >= spec.activeDeadlineSeconds * 1000
    )
      failure = { reason: 'DeadlineExceeded', msg: 'Job was active longer than specified deadline' };
    if (failure) {
      this.rec.record(jobObj, { type: 'Warning', reason: failure.reason, message: failure.msg, component: 'job-controller' });
      return setCondition(conditions, cond('FailureTarget', failure.reason, failure.msg));
    }
    if ((st.succeeded ?? 0) >= completions)
      return setCondition(conditions, cond('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods'));
    return conditions;
  }

  /** Once no pod is left running: Failed after FailureTarget, Complete after SuccessCriteriaMet. */
  private conclude({ jobObj, st }: JobSync, conditions: Obj[], failing: Obj | undefined, succeeding: boolean): Obj[] {
    if (failing) return setCondition(conditions, cond('Failed', failing.reason, failing.message));
    if (!succeeding) return conditions;
    st.completionTime = now();
    this.rec.record(jobObj, { type: 'Normal', reason: 'Completed', message: 'Job completed', component: 'job-controller' });
    return setCondition(conditions, cond('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods'));
  }

  /** Creates the pods parallelism and completions still call for, once the failure back-off has passed; returns how many. */
  private async createDue(
    { job, jobObj, spec, st, finished }: JobSync,
    counts: { active: number; terminating: number; completions: number; pods: string },
  ): Promise<number> {
    if (finished || spec.suspend || job.metadata.deletionTimestamp) return 0;
    const workQueue = spec.completions === undefined || spec.completions === null;
    const countTerminating = spec.podReplacementPolicy === 'Failed' ? counts.terminating : 0;
    const remaining = workQueue ? ((st.succeeded ?? 0) > 0 ? 0 : Infinity) : counts.completions - (st.succeeded ?? 0);
    const want = Math.min(spec.parallelism ?? 1, remaining) - counts.active - countTerminating;
    const last = this.lastFailure.get(job.metadata.uid);
    const failed = st.failed ?? 0;
    const backoff = failed > 0 ? Math.min(this.opts.jobBackoffBaseMs * 2 ** (failed - 1), 360_000) : 0;
    if (want <= 0 || (last && Date.now() - last < backoff)) return 0;
    const uid = job.metadata.uid as string;
    const refused = this.apiBackoff.get(uid);
    // a change to the Job's pods brings a retry forward, batched by a second (syncJobBatchPeriod)
    if (refused && Date.now() < refused.until && (refused.pods === counts.pods || Date.now() - refused.at < SYNC_BATCH_MS)) return 0;
    const { created, failed: refusedNow } = await this.createBatches(job, jobObj, want);
    if (!refusedNow) this.apiBackoff.delete(uid);
    else {
      const failures = (refused?.failures ?? 0) + 1;
      this.apiBackoff.set(uid, {
        failures,
        at: Date.now(),
        until: Date.now() + Math.min(API_BACKOFF_FIRST_MS * 2 ** (failures - 1), this.opts.jobApiBackoffMaxMs),
        pods: counts.pods,
      });
    }
    return created;
  }

  /** Creates `want` pods in slow-start batches (1, 2, 4, …), as the real controller does: a batch with a refusal is the last. */
  private async createBatches(job: Obj, jobObj: Obj, want: number): Promise<{ created: number; failed: number }> {
    let created = 0;
    let failed = 0;
    for (let batch = 1, left = want; left > 0 && failed === 0; left -= batch, batch *= 2) {
      for (let i = 0; i < Math.min(batch, left); i++) {
        if (await this.createPod(job, jobObj)) created++;
        else failed++;
      }
    }
    return { created, failed };
  }

  private async writeJobStatus(
    { job, st }: JobSync,
    conditions: Obj[],
    pods: { active: Obj[]; terminating: number; created: number },
  ): Promise<void> {
    if (conditions.length) st.conditions = conditions;
    st.active = pods.active.length + pods.created;
    st.ready = pods.active.filter((p) => hasCond(p, 'Ready')).length;
    st.terminating = pods.terminating;
    st.uncountedTerminatedPods = {};
    if (!st.active) delete st.active;
    if (!st.succeeded) delete st.succeeded;
    if (!st.failed) delete st.failed;
    if (JSON.stringify(st) !== JSON.stringify(job.status ?? {})) {
      await this.reg.mutate(
        { inf: JOB, ns: job.metadata.namespace, name: job.metadata.name },
        (x) => {
          x.status = st;
        },
        'status',
      );
    }
  }

  private async createPod(job: Obj, jobObj: Obj): Promise<boolean> {
    const t = clone(job.spec.template as Obj);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${String(job.metadata.name)}-`,
        namespace: job.metadata.namespace,
        labels: t.metadata?.labels ?? {},
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name,
            uid: job.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [TRACKING],
      },
      spec: t.spec,
    };
    try {
      const out = await this.reg.create(POD, job.metadata.namespace, pod);
      this.rec.record(jobObj, {
        type: 'Normal',
        reason: 'SuccessfulCreate',
        message: `Created pod: ${String(out.obj.metadata.name)}`,
        component: 'job-controller',
      });
      return true;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.rec.record(jobObj, { type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${msg}`, component: 'job-controller' });
      return false;
    }
  }
}
