/**
 * Per-job tracking for the `kubernetes` batch system: pure logic over what the list + watch
 * streams report. Each batch job is known by its Job name and its batch id label (on its Job
 * and pods; it names the leader's incarnation, so an earlier leader's pods match none); the
 * tracker keeps the newest pod of each Job and turns events into actions for the I/O layer: finish a job with a verdict (an ended Job, an image that can never be pulled or
 * still cannot be after the pod timeout, a pod unschedulable for too long, a job whose pods
 * were taken away too often), warn about a pod that was taken away, or read the events of a
 * pod whose container has not started for the pod timeout (then `inspected` gives the verdict:
 * the kubelet's warning, or wait longer).
 */
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';
import { formatSize } from '../size.js';
import { LABEL_BATCH_ID } from './kubernetesSpec.js';
import {
  disrupted,
  imageFailure,
  imagePullTimeout,
  imagePullWaiting,
  jobVerdict,
  notStarting,
  podVerdict,
  startFailure,
  tooManyDisruptions,
  unschedulableSince,
  type PodVerdict,
} from './podOutcome.js';
import { podAccount } from './podAccount.js';
import { processEndReason, tailIsAttemptLog } from './processEnd.js';
import { notCreatedInTime, readRefusal, refusalWait, refusedVerdict, type Refusal } from './createRefusal.js';
import type { BatchJobEnd } from './types.js';
import type { WatchEventType } from './listWatch.js';

export interface TrackedJob {
  batchJobId: number;
  /** The batch id label on its Job and pods (the leader's incarnation and the batch id). */
  batchLabel: string;
  /** The Job's name. */
  name: string;
  jobId: string;
  jobName: string;
  requirements: ResolvedRequirements;
  /** An executor's name (its Job gets no new pod for a disrupted one: it ends, and the executor's jobs with it). */
  executor?: string;
  /** The newest pod seen for the Job. */
  pod?: V1Pod;
  ended: boolean;
  /** Being finished (log capture, deletion) or killed: no second finish. */
  finishing: boolean;
  /** When the Job was first seen in the cluster (a list or watch event), in ms. */
  seenAt?: number;
  /** When its create request returned, in ms. */
  createdAt?: number;
  /** Since when its newest pod has been seen ended (Succeeded or Failed) while its Job has not, in ms. */
  podEndedAt?: number;
  unschedulable?: { since: number; message: string };
  /** Since when the pod's container has not been created (failed mount, config error), and why. */
  notStarting?: { since: number; reason: string; message?: string };
  /** When its events are next read, if the container still has not started (0: being read). */
  nextInspection?: number;
  /** Since when the pod has waited on its image (ErrImagePull, ImagePullBackOff), and the last pull error. */
  imagePull?: { since: number; image: string; reason: string; lastError?: string };
  /** Pods of the Job that were taken away (each counted once). */
  disruptedPods: Set<string>;
  /** Since when the cluster has refused to create its pod (or its Job), and what it said last. */
  refused?: { since: number; refusal: Refusal; count: number };
}

/** How long after its create returned a Job missing from a list is taken as gone (lists may be answered from a lagging cache). */
export const FORGOTTEN_AFTER_MS = 30_000;

/** How long a Job seen in the cluster may have no pod before its FailedCreate events are read. */
export const NO_POD_GRACE_MS = 5_000;

/** How often FailedCreate events are read again while some Job has no pod (one list request for all of them). */
export const CREATES_INSPECTION_MS = 10_000;

export interface JobTrackerOptions {
  /** How many times a job's pod may be taken away; one more fails the job (default 5). */
  maxDisruptions?: number;
}

export type TrackerAction =
  /** End the job with this verdict; `deleteNow`: the verdict stands even if its pod ended. */
  | { kind: 'finish'; job: TrackedJob; verdict: PodVerdict; deleteNow: boolean }
  | { kind: 'warn'; message: string }
  /** Read the pod's events (its container has not started for the pod timeout) and hand them to `inspected`. */
  | { kind: 'inspect'; job: TrackedJob; pod: V1Pod }
  /** Read the workflow's Jobs' FailedCreate events (some Job has had no pod for a while) and hand them to `createsInspected`. */
  | { kind: 'inspectCreates' };

/** When the kubelet started the pod (status.startTime); now when it does not say. */
function startTime(pod: V1Pod): number {
  const t = new Date((pod.status?.startTime as unknown as string | undefined) ?? NaN).getTime();
  return Number.isFinite(t) ? t : Date.now();
}

function creationTime(pod: V1Pod): number {
  return new Date((pod.metadata?.creationTimestamp as unknown as string | undefined) ?? 0).getTime();
}

/**
 * Keeps `pod` as the job's pod unless it is older than the one kept: a preempted pod is replaced
 * by a new one, and the old pod's events change nothing. Says whether it was kept.
 */
function keepIfNewer(t: TrackedJob, pod: V1Pod): boolean {
  const previous = t.pod;
  if (previous && previous.metadata?.name !== pod.metadata?.name && creationTime(pod) < creationTime(previous)) return false;
  t.pod = pod;
  return true;
}

/** The words for a request the scheduler cannot place. */
export function describeRequest(r: ResolvedRequirements): string {
  const gpus = gpuCount(r);
  return `${r.cores} cores, ${formatSize(r.memory)} memory, ${formatSize(r.disk)} disk${gpus ? `, ${gpus} GPU(s)` : ''}${r.preemptible ? ', preemptible' : ''}`;
}

/** A pod no node could take for the pod timeout: it fails for good, naming its request and the scheduler's reason. */
function unschedulableVerdict(t: TrackedJob, podTimeoutSeconds: number): PodVerdict {
  return {
    outcome: 'unschedulable',
    exitCode: null,
    message: `no node could take the worker pod for ${podTimeoutSeconds}s (--kubernetesPodTimeout); it asks for ${describeRequest(t.requirements)}; the scheduler says: ${t.unschedulable?.message ?? ''}`,
    countsAsAttempt: true,
    retryable: false,
  };
}

export class JobTracker {
  private readonly byId = new Map<number, TrackedJob>();
  private readonly byName = new Map<string, TrackedJob>();
  private readonly byLabel = new Map<string, TrackedJob>();
  private readonly maxDisruptions: number;
  /** When the FailedCreate events are next read (Infinity: being read). */
  private nextCreatesInspection = 0;

  constructor(o: JobTrackerOptions = {}) {
    this.maxDisruptions = o.maxDisruptions ?? 5;
  }

  add(args: Pick<TrackedJob, 'batchJobId' | 'batchLabel' | 'name' | 'jobId' | 'jobName' | 'requirements' | 'executor'>): TrackedJob {
    const t: TrackedJob = { ...args, ended: false, finishing: false, disruptedPods: new Set() };
    this.byId.set(t.batchJobId, t);
    this.byName.set(t.name, t);
    this.byLabel.set(t.batchLabel, t);
    return t;
  }

  get(batchJobId: number): TrackedJob | undefined {
    return this.byId.get(batchJobId);
  }

  /** A Job event: finishes the job once the Job has a final condition, or once someone else deleted it. */
  onJob(type: WatchEventType, job: V1Job, now = Date.now()): TrackerAction[] {
    const t = this.byName.get(job.metadata?.name ?? '');
    if (!t || t.ended) return [];
    t.seenAt ??= now;
    const verdict = jobVerdict(job);
    if (verdict) return [{ kind: 'finish', job: t, verdict, deleteNow: false }];
    return type === 'DELETED' ? this.deletedElsewhere(t) : [];
  }

  /**
   * A (re-)list of the workflow's Jobs, whose request was sent at `sentAt`: a Job seen before
   * then and missing now was deleted while the watch was down (a list carries no DELETED
   * events); a Job whose create returned well before then (FORGOTTEN_AFTER_MS) and that no list
   * or event ever showed is gone too. A Job seen or created after the request was sent may be
   * missing from its answer: it is left alone.
   */
  onJobList(jobs: V1Job[], sentAt = Date.now()): TrackerAction[] {
    const present = new Set(jobs.map((j) => j.metadata?.name));
    const out: TrackerAction[] = [];
    for (const t of this.byId.values()) {
      if (t.ended || present.has(t.name)) continue;
      if (t.seenAt !== undefined && t.seenAt < sentAt) out.push(...this.deletedElsewhere(t));
      else if (t.seenAt === undefined && t.createdAt !== undefined && t.createdAt < sentAt - FORGOTTEN_AFTER_MS)
        out.push(...this.forgotten(t, sentAt));
    }
    return out;
  }

  /**
   * Whether the cluster's Jobs should be listed again (`onJobList`): some Job was created long
   * enough ago (FORGOTTEN_AFTER_MS) and never seen, or its pod ended that long ago and no ending
   * of its Job came. Otherwise the watch is trusted and a resync costs no request: a long quiet
   * job makes none.
   */
  needsResync(now = Date.now()): boolean {
    for (const t of this.byId.values()) {
      if (t.ended || t.finishing) continue;
      if (t.seenAt === undefined && t.createdAt !== undefined && now - t.createdAt >= FORGOTTEN_AFTER_MS) return true;
      if (t.podEndedAt !== undefined && now - t.podEndedAt >= FORGOTTEN_AFTER_MS) return true;
    }
    return false;
  }

  /** Its create request returned: from now on a list that does not show it (long enough after) means it is gone. */
  created(t: TrackedJob, now = Date.now()): void {
    t.createdAt = now;
  }

  /** A Job created that the cluster never showed and no longer has: it runs again, using up a try as a deleted one does. */
  private forgotten(t: TrackedJob, now: number): TrackerAction[] {
    if (t.finishing) return [];
    const secs = Math.round((now - (t.createdAt ?? now)) / 1000);
    const verdict: PodVerdict = {
      outcome: 'failed',
      exitCode: null,
      message: `worker Job ${t.name} was created ${secs}s ago but the cluster does not have it (it went before this leader saw it run); running the job again`,
      countsAsAttempt: true,
      retryable: true,
    };
    return [{ kind: 'finish', job: t, verdict, deleteNow: true }];
  }

  /**
   * The Job went without this leader deleting it (it claims a job before deleting its Job).
   * This counts as a try and may be retried: it is no disruption of the cluster's own (those are
   * free), but someone's deliberate act whose reason the leader cannot know; counting it keeps
   * a Job deleted again and again from running forever, and a single stray deletion still leaves
   * the job its remaining tries.
   */
  private deletedElsewhere(t: TrackedJob): TrackerAction[] {
    if (t.finishing) return [];
    const verdict: PodVerdict = {
      outcome: 'failed',
      exitCode: null,
      message: `worker Job ${t.name} was deleted by someone else (not by this leader) before it finished`,
      countsAsAttempt: true,
      retryable: true,
    };
    return [{ kind: 'finish', job: t, verdict, deleteNow: true }];
  }

  /** A pod event: keeps the newest pod of the Job, fails fast on image failures, notes scheduling. */
  onPod(type: WatchEventType, pod: V1Pod, now = Date.now()): TrackerAction[] {
    // Only a pod with the exact batch id label of this leader's batch job: never an earlier leader's.
    const t = this.byLabel.get(pod.metadata?.labels?.[LABEL_BATCH_ID] ?? '');
    if (!t || t.ended) return [];
    const actions = this.countDisruption(t, pod);
    if (type === 'DELETED' || actions.some((a) => a.kind === 'finish')) return actions;
    if (!keepIfNewer(t, pod)) return actions;
    delete t.refused;
    if (this.podEnded(t)) t.podEndedAt ??= now;
    else delete t.podEndedAt;
    this.noteImagePull(t, pod);
    const image = imageFailure(pod, t.imagePull?.lastError);
    if (image) return [...actions, { kind: 'finish', job: t, verdict: image, deleteNow: true }];
    const u = unschedulableSince(pod);
    if (u) t.unschedulable ??= u;
    else delete t.unschedulable;
    this.noteStarting(t, pod);
    return actions;
  }

  /**
   * A pod taken away (once per pod, whatever order its events come in): a warning, as it runs
   * again without using up a try; past the bound, the job's end. An executor's Job ends with
   * its pod (its verdict says it was taken away): the executor batch system says what that
   * means for its jobs.
   */
  private countDisruption(t: TrackedJob, pod: V1Pod): TrackerAction[] {
    const taken = disrupted(pod);
    const name = pod.metadata?.name ?? '';
    if (!taken || t.disruptedPods.has(name)) return [];
    t.disruptedPods.add(name);
    if (t.executor !== undefined) return [];
    if (t.disruptedPods.size > this.maxDisruptions) {
      return [{ kind: 'finish', job: t, verdict: tooManyDisruptions(t.disruptedPods.size, this.maxDisruptions, taken), deleteNow: true }];
    }
    return [
      {
        kind: 'warn',
        message: `worker pod ${name} of job '${t.jobName}' (${t.jobId}) was taken away (${taken}); it will run again without using up a try (${t.disruptedPods.size} of ${this.maxDisruptions} allowed, --kubernetesMaxDisruptions)`,
      },
    ];
  }

  /** Since when the pod has waited on its image (from the kubelet's start of the pod), and the last pull error seen. */
  private noteImagePull(t: TrackedJob, pod: V1Pod): void {
    const w = imagePullWaiting(pod);
    if (!w) {
      delete t.imagePull;
      return;
    }
    const lastError = w.reason === 'ErrImagePull' && w.message ? w.message : t.imagePull?.lastError;
    t.imagePull = { since: t.imagePull?.since ?? startTime(pod), image: w.image, reason: w.reason, ...(lastError ? { lastError } : {}) };
  }

  /** Since when the pod's container has not been created: from the kubelet's start of the pod. */
  private noteStarting(t: TrackedJob, pod: V1Pod): void {
    const stuck = notStarting(pod);
    if (!stuck) {
      delete t.notStarting;
      delete t.nextInspection;
      return;
    }
    t.notStarting = { since: t.notStarting?.since ?? startTime(pod), ...stuck };
  }

  /** The pod's events, read once its container had not started for the pod timeout: a verdict, or a look again later. */
  inspected(t: TrackedJob, events: CoreV1Event[] | { error: string }, o: { now: number; podTimeoutSeconds: number }): TrackerAction[] {
    if (t.ended || t.finishing || !t.notStarting) return [];
    const verdict = startFailure(t.notStarting, o.podTimeoutSeconds, events);
    if (verdict) return [{ kind: 'finish', job: t, verdict, deleteNow: true }];
    t.nextInspection = o.now + Math.max(o.podTimeoutSeconds, 60) * 1000;
    return [];
  }

  /** Jobs whose pod has been unschedulable, or whose container has not started, for longer than the pod timeout. */
  stuck(now: number, podTimeoutSeconds: number): TrackerAction[] {
    const out: TrackerAction[] = [];
    for (const t of this.byId.values()) {
      if (t.ended || t.finishing) continue;
      const n = t.notStarting;
      if (n && t.pod && t.nextInspection !== 0 && now - n.since >= podTimeoutSeconds * 1000 && now >= (t.nextInspection ?? 0)) {
        t.nextInspection = 0;
        out.push({ kind: 'inspect', job: t, pod: t.pod });
      }
      if (t.imagePull && now - t.imagePull.since >= podTimeoutSeconds * 1000) {
        out.push({ kind: 'finish', job: t, verdict: imagePullTimeout(t.imagePull, podTimeoutSeconds), deleteNow: true });
        continue;
      }
      if (t.unschedulable && now - t.unschedulable.since >= podTimeoutSeconds * 1000) {
        out.push({ kind: 'finish', job: t, verdict: unschedulableVerdict(t, podTimeoutSeconds), deleteNow: true });
      }
    }
    return [...out, ...this.createsDue(now)];
  }

  /** Jobs seen in the cluster for a while with no pod: their pods may be refused. */
  private podless(now: number): TrackedJob[] {
    return [...this.byId.values()].filter(
      (t) => !t.ended && !t.finishing && !t.pod && t.seenAt !== undefined && now - t.seenAt >= NO_POD_GRACE_MS,
    );
  }

  /** Whether the FailedCreate events are due to be read (some Job has had no pod for a while). */
  private createsDue(now: number): TrackerAction[] {
    if (now < this.nextCreatesInspection || this.podless(now).length === 0) return [];
    this.nextCreatesInspection = Infinity;
    return [{ kind: 'inspectCreates' }];
  }

  /**
   * The workflow's Jobs' FailedCreate events (or why they cannot be read), for the Jobs that have
   * no pod (createRefusal.ts): a refusal that can never succeed ends the job at once; one that
   * can (a full quota) is waited out until the pod timeout, from the first refusal (or from when
   * the Job was seen, if the cluster says nothing), and shown in the progress line.
   */
  createsInspected(events: CoreV1Event[] | { error: string }, o: { now: number; podTimeoutSeconds: number }): TrackerAction[] {
    this.nextCreatesInspection = o.now + CREATES_INSPECTION_MS;
    const newest = Array.isArray(events) ? newestFailedCreates(events) : new Map<string, CoreV1Event>();
    const out: TrackerAction[] = [];
    for (const t of this.podless(o.now)) {
      const e = newest.get(t.name);
      if (e) {
        const refusal = readRefusal(e.message ?? '');
        if (refusal.final) {
          out.push({ kind: 'finish', job: t, verdict: refusedVerdict(refusal), deleteNow: true });
          continue;
        }
        t.refused = { since: t.refused?.since ?? eventFirstTime(e) ?? o.now, refusal, count: e.count ?? 1 };
      }
      const since = t.refused?.since ?? t.seenAt ?? o.now;
      if (o.now - since >= o.podTimeoutSeconds * 1000) {
        out.push({ kind: 'finish', job: t, verdict: notCreatedInTime(t.refused?.refusal, o.podTimeoutSeconds), deleteNow: true });
      }
    }
    return out;
  }

  /** The cluster refused to create the Job itself (a quota on Jobs), at `now`: waited out like a refused pod. Returns how many times so far. */
  jobRefused(t: TrackedJob, refusal: Refusal, now = Date.now()): number {
    t.refused = { since: t.refused?.since ?? now, refusal, count: (t.refused?.count ?? 0) + 1 };
    return t.refused.count;
  }

  /** Marks a job as being finished; false if it already ended or is being finished. */
  claim(t: TrackedJob): boolean {
    if (t.ended || t.finishing) return false;
    t.finishing = true;
    return true;
  }

  /**
   * Whether the job's pod is known to have ended. The Job and pod streams are separate and either
   * may lag: a Job can be seen Failed or Complete before its pod is seen ended, and then the
   * pod's own state (exit code, OOM kill) must be read before the verdict is given.
   */
  podEnded(t: TrackedJob): boolean {
    const phase = t.pod?.status?.phase;
    return phase === 'Failed' || phase === 'Succeeded';
  }

  /** Takes the newest of the Job's pods as read from the API (see `podEnded`). */
  notePods(t: TrackedJob, pods: readonly V1Pod[]): void {
    for (const pod of pods) keepIfNewer(t, pod);
  }

  /** The verdict to report: an ended pod's own reading wins unless the verdict must stand. */
  settle(t: TrackedJob, verdict: PodVerdict, deleteNow: boolean): PodVerdict {
    return !deleteNow && t.pod && this.podEnded(t) ? podVerdict(t.pod) : verdict;
  }

  /**
   * Forgets the job and says how it ended; undefined if it had already ended. With the pod's log
   * tail: a worker whose job ended the process (its pod's exit code known) says so in its last
   * line, and the end says it as single_machine does ('the job called process.exit(3)'); the
   * tail is the attempt's log unless the worker saved one itself.
   */
  end(t: TrackedJob, v: PodVerdict, outputTail?: string): BatchJobEnd | undefined {
    if (t.ended) return undefined;
    t.ended = true;
    this.byId.delete(t.batchJobId);
    this.byName.delete(t.name);
    this.byLabel.delete(t.batchLabel);
    const lines = outputTail?.split('\n') ?? [];
    const told = v.outcome === 'failed' && v.exitCode !== null ? processEndReason(lines) : undefined;
    return {
      batchJobId: t.batchJobId,
      jobId: t.jobId,
      outcome: v.outcome,
      exitCode: v.exitCode,
      message: told ?? v.message,
      countsAsAttempt: v.countsAsAttempt,
      ...(v.retryable ? {} : { final: true }),
      ...(outputTail ? { outputTail, ...(tailIsAttemptLog(v.exitCode, lines) ? { outputIsLog: true } : {}) } : {}),
      ...(t.pod ? { place: podAccount(t.pod) } : {}),
    };
  }

  /** Batch jobs issued and not yet ended. */
  get size(): number {
    return this.byId.size;
  }

  /**
   * What the issued batch jobs that are not running wait for, grouped, the largest groups first,
   * each with one example of what the cluster says (for the progress line); undefined if none waits.
   */
  waitingFor(): string | undefined {
    const groups = new Map<string, { count: number; example: string | undefined }>();
    for (const t of this.byId.values()) {
      if (t.ended) continue;
      const why = waitReason(t);
      if (!why) continue;
      const g = groups.get(why.what) ?? { count: 0, example: why.example };
      g.count++;
      groups.set(why.what, g);
    }
    if (groups.size === 0) return undefined;
    return [...groups.entries()]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 3)
      .map(([what, g]) => `${g.count} ${what}${g.example ? ` (${clip(g.example, 160)})` : ''}`)
      .join('; ');
  }

  /** Batch jobs whose pod is running. */
  running(): number {
    let n = 0;
    for (const t of this.byId.values()) if (t.pod?.status?.phase === 'Running') n++;
    return n;
  }
}

/** Why a tracked batch job is not running yet, in a few words and an example; undefined when it runs. */
function waitReason(t: TrackedJob): { what: string; example?: string } | undefined {
  const phase = t.pod?.status?.phase;
  if (phase === 'Running') return undefined;
  if (t.finishing) return { what: 'ending' };
  if (t.refused) return refusalWait(t.refused.refusal);
  if (t.unschedulable) return { what: 'waiting for a node', example: t.unschedulable.message };
  if (t.imagePull) return { what: 'waiting for an image', example: `${t.imagePull.image}: ${t.imagePull.lastError ?? t.imagePull.reason}` };
  if (t.notStarting)
    return { what: 'waiting for a container to start', example: [t.notStarting.reason, t.notStarting.message].filter(Boolean).join(': ') };
  if (phase === 'Succeeded' || phase === 'Failed') return { what: 'ending' };
  if (t.pod) return { what: 'starting', ...(t.pod.spec?.nodeName ? {} : { example: 'not yet scheduled' }) };
  if (t.seenAt !== undefined) return { what: 'waiting for a pod' };
  return { what: 'being created' };
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The newest FailedCreate event of each Job, by name. */
function newestFailedCreates(events: readonly CoreV1Event[]): Map<string, CoreV1Event> {
  const out = new Map<string, CoreV1Event>();
  for (const e of events) {
    const name = e.involvedObject?.name;
    if (e.reason !== 'FailedCreate' || !name) continue;
    const seen = out.get(name);
    if (!seen || eventLastTime(e) >= eventLastTime(seen)) out.set(name, e);
  }
  return out;
}

function eventLastTime(e: CoreV1Event): number {
  return timeOf(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp) ?? 0;
}

function eventFirstTime(e: CoreV1Event): number | undefined {
  return timeOf(e.firstTimestamp ?? e.eventTime);
}

function timeOf(t: unknown): number | undefined {
  const ms = t === undefined || t === null ? NaN : new Date(t as string).getTime();
  return Number.isFinite(ms) ? ms : undefined;
}
