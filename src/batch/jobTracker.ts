/**
 * Per-job tracking for the `kubernetes` batch system: pure logic over what the list + watch
 * streams report. Each batch job is known by its Job name and its batch id label (on its Job
 * and pods; it names the leader's incarnation, so an earlier leader's pods match none); the
 * tracker keeps the newest pod of each Job and turns events into actions for the I/O layer:
 * finish a job with a verdict (an ended Job, an image that cannot be pulled, a pod
 * unschedulable for too long) or warn about a pod that was taken away.
 */
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';
import { formatSize } from '../size.js';
import { LABEL_BATCH_ID } from './kubernetesSpec.js';
import { disrupted, imageFailure, jobVerdict, podVerdict, unschedulableSince, type PodVerdict } from './podOutcome.js';
import { processEndReason, tailIsAttemptLog } from './processEnd.js';
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
  /** The newest pod seen for the Job. */
  pod?: V1Pod;
  ended: boolean;
  /** Being finished (log capture, deletion) or killed: no second finish. */
  finishing: boolean;
  unschedulable?: { since: number; message: string };
}

export type TrackerAction =
  /** End the job with this verdict; `deleteNow`: the verdict stands even if its pod ended. */
  { kind: 'finish'; job: TrackedJob; verdict: PodVerdict; deleteNow: boolean } | { kind: 'warn'; message: string };

function creationTime(pod: V1Pod): number {
  return new Date((pod.metadata?.creationTimestamp as unknown as string | undefined) ?? 0).getTime();
}

/** The words for a request the scheduler cannot place. */
export function describeRequest(r: ResolvedRequirements): string {
  const gpus = gpuCount(r);
  return `${r.cores} cores, ${formatSize(r.memory)} memory, ${formatSize(r.disk)} disk${gpus ? `, ${gpus} GPU(s)` : ''}${r.preemptible ? ', preemptible' : ''}`;
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

export class JobTracker {
  private readonly byId = new Map<number, TrackedJob>();
  private readonly byName = new Map<string, TrackedJob>();
  private readonly byLabel = new Map<string, TrackedJob>();

  add(args: {
    batchJobId: number;
    batchLabel: string;
    name: string;
    jobId: string;
    jobName: string;
    requirements: ResolvedRequirements;
  }): TrackedJob {
    const t: TrackedJob = { ...args, ended: false, finishing: false };
    this.byId.set(t.batchJobId, t);
    this.byName.set(t.name, t);
    this.byLabel.set(t.batchLabel, t);
    return t;
  }

  get(batchJobId: number): TrackedJob | undefined {
    return this.byId.get(batchJobId);
  }

  /** A Job event: finishes the job once the Job has a final condition. */
  onJob(_type: WatchEventType, job: V1Job): TrackerAction[] {
    const t = this.byName.get(job.metadata?.name ?? '');
    if (!t || t.ended) return [];
    const verdict = jobVerdict(job);
    return verdict ? [{ kind: 'finish', job: t, verdict, deleteNow: false }] : [];
  }

  /** A pod event: keeps the newest pod of the Job, fails fast on image failures, notes scheduling. */
  onPod(type: WatchEventType, pod: V1Pod): TrackerAction[] {
    // Only a pod with the exact batch id label of this leader's batch job: never an earlier leader's.
    const t = this.byLabel.get(pod.metadata?.labels?.[LABEL_BATCH_ID] ?? '');
    if (!t || t.ended || type === 'DELETED') return [];
    const previous = t.pod;
    if (!keepIfNewer(t, pod)) return [];
    const actions: TrackerAction[] = [];
    const taken = disrupted(pod);
    if (
      pod.status?.phase === 'Failed' &&
      taken &&
      previous?.metadata?.name === pod.metadata?.name &&
      previous?.status?.phase !== 'Failed'
    ) {
      actions.push({
        kind: 'warn',
        message: `worker pod ${pod.metadata?.name} of job '${t.jobName}' (${t.jobId}) was taken away (${taken}); it will run again without using up a try`,
      });
    }
    const image = imageFailure(pod);
    if (image) return [...actions, { kind: 'finish', job: t, verdict: image, deleteNow: true }];
    const u = unschedulableSince(pod);
    if (u) t.unschedulable ??= u;
    else delete t.unschedulable;
    return actions;
  }

  /** Jobs whose pod has been unschedulable for longer than the pod timeout. */
  stuck(now: number, podTimeoutSeconds: number): TrackerAction[] {
    const out: TrackerAction[] = [];
    for (const t of this.byId.values()) {
      if (t.ended || t.finishing || !t.unschedulable) continue;
      if (now - t.unschedulable.since < podTimeoutSeconds * 1000) continue;
      const verdict: PodVerdict = {
        outcome: 'unschedulable',
        exitCode: null,
        message: `no node could take the worker pod for ${podTimeoutSeconds}s (--kubernetesPodTimeout); it asks for ${describeRequest(t.requirements)}; the scheduler says: ${t.unschedulable.message}`,
        countsAsAttempt: true,
        retryable: false,
      };
      out.push({ kind: 'finish', job: t, verdict, deleteNow: true });
    }
    return out;
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

  /** Marks a job as being finished; false if it already ended or is being finished. */
  claim(t: TrackedJob): boolean {
    if (t.ended || t.finishing) return false;
    t.finishing = true;
    return true;
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
    };
  }

  /** Batch jobs issued and not yet ended. */
  get size(): number {
    return this.byId.size;
  }

  /** Batch jobs whose pod is running. */
  running(): number {
    let n = 0;
    for (const t of this.byId.values()) if (t.pod?.status?.phase === 'Running') n++;
    return n;
  }
}
