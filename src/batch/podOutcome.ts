/**
 * Why a worker pod ended (or is stuck): a pure reading of a Job and its pod, as the API reports
 * them. Every ending gets an outcome and a sentence for people. The rules:
 *
 * - A pod the kubelet evicted for using more local storage than its limits (`reason: Evicted`,
 *   the eviction manager's message, no DisruptionTarget) is out of disk: the job wrote more than
 *   its `disk` requirement (the worker's ephemeral-storage limit). It uses up a try.
 * - A pod taken away (a DisruptionTarget condition: spot reclaim, node loss, preemption, node
 *   pressure; or an eviction/node loss without one on older clusters) does not use up a try;
 *   but a job whose pods are taken away more often than a bound fails for good, saying so.
 * - An image that can never be pulled (InvalidImageName, ErrImageNeverPull, a registry saying
 *   it is not there) fails fast, naming the image; a pull failing otherwise (ErrImagePull,
 *   ImagePullBackOff after a registry error) is transient, and fails only once it has gone on
 *   for --kubernetesPodTimeout.
 * - A scheduled pod whose container is not created (ContainerCreating with a kubelet warning such
 *   as FailedMount for a missing secret, CreateContainerConfigError for a missing key) fails
 *   for good after --kubernetesPodTimeout, with the kubelet's message; a pod merely slow to
 *   start (an image pull, no warning) keeps waiting.
 * - OOMKilled is out of memory; exit code 0 or phase Succeeded is success; DeadlineExceeded is
 *   the deadline; anything else is a failure with the exit code.
 */
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { parseSize } from '../size.js';
import type { BatchOutcome } from './types.js';

export interface PodVerdict {
  outcome: BatchOutcome;
  exitCode: number | null;
  message: string;
  /** Whether the attempt counts against the job's tries. */
  countsAsAttempt: boolean;
  /** Whether trying again can help at all. */
  retryable: boolean;
}

const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable']);
/** Reasons that no retry can change: a name that is not an image reference, a policy that forbids pulling. */
const FINAL_IMAGE_REASONS = new Set(['InvalidImageName', 'ErrImageNeverPull']);
/** What registries and containerd say when the image is not there (as opposed to a registry having a bad minute). */
const IMAGE_NOT_FOUND = /\bnot found\b|code = NotFound|manifest unknown|repository does not exist|does not exist or may require/i;

function condition(
  obj: { status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } },
  type: string,
) {
  return obj.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** A container of the pod waiting on its image: the image, the waiting reason and the kubelet's message. */
export function imagePullWaiting(pod: V1Pod): { image: string; reason: string; message?: string } | undefined {
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const w = cs.state?.waiting;
    if (w?.reason && IMAGE_REASONS.has(w.reason))
      return { image: cs.image, reason: w.reason, ...(w.message ? { message: w.message } : {}) };
  }
  return undefined;
}

/**
 * A pod whose image can never be pulled: an invalid name, ErrImageNeverPull, or a registry
 * saying the image is not there (in the status, or in the last pull error seen, since
 * ImagePullBackOff's message only says "Back-off pulling image"). Fails fast. A transient pull
 * failure (a registry error, a timeout) is no verdict: the kubelet pulls again.
 */
export function imageFailure(pod: V1Pod, lastPullError?: string): PodVerdict | undefined {
  const w = imagePullWaiting(pod);
  if (!w) return undefined;
  const notFound = [w.message, lastPullError].some((m) => m !== undefined && IMAGE_NOT_FOUND.test(m));
  if (!FINAL_IMAGE_REASONS.has(w.reason) && !notFound) return undefined;
  const detail = w.message && !w.message.startsWith('Back-off') ? w.message : (lastPullError ?? w.message);
  return {
    outcome: 'image',
    exitCode: null,
    message: `cannot pull the worker image '${w.image}': ${w.reason}${detail ? ` (${detail})` : ''}`,
    countsAsAttempt: true,
    retryable: false,
  };
}

/** A pull still failing after the pod timeout: the job fails for good, naming the image and the last error. */
export function imagePullTimeout(w: { image: string; reason: string; lastError?: string }, timeoutSeconds: number): PodVerdict {
  return {
    outcome: 'image',
    exitCode: null,
    message: `cannot pull the worker image '${w.image}' for ${timeoutSeconds}s (--kubernetesPodTimeout): ${w.reason}${w.lastError ? ` (${w.lastError})` : ''}`,
    countsAsAttempt: true,
    retryable: false,
  };
}

/** Since when a pod has been unschedulable, and the scheduler's reason; undefined if it is not. */
export function unschedulableSince(pod: V1Pod): { since: number; message: string } | undefined {
  if (pod.spec?.nodeName) return undefined;
  const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False' && x.reason === 'Unschedulable');
  if (!c) return undefined;
  const t = c.lastTransitionTime ? new Date(c.lastTransitionTime as unknown as string).getTime() : Date.now();
  return { since: Number.isFinite(t) ? t : Date.now(), message: c.message ?? 'no node fits' };
}

/**
 * The kubelet's message when it evicted the pod for using more local storage than its limits
 * (its containers' `ephemeral-storage` limits, or an emptyDir's `sizeLimit`); undefined otherwise.
 * Such an eviction carries no DisruptionTarget condition: it is the pod's own doing.
 */
export function storageEviction(pod: V1Pod): string | undefined {
  if (pod.status?.reason !== 'Evicted' || condition(pod, 'DisruptionTarget')) return undefined;
  const m = pod.status.message ?? '';
  return STORAGE_LIMIT_MESSAGES.test(m) ? m.trim() : undefined;
}

/** The kubelet's eviction messages for the local storage limits (pkg/kubelet/eviction). */
const STORAGE_LIMIT_MESSAGES =
  /^(Pod ephemeral local storage usage exceeds|Container \S+ exceeded its local ephemeral storage limit|Usage of EmptyDir volume)/;

/** A quantity's bytes (the API server may print `20000000` as `20M`); undefined when it is not one. */
function quantityBytes(q: string | undefined): number | undefined {
  if (q === undefined) return undefined;
  try {
    return parseSize(q);
  } catch {
    return undefined;
  }
}

/** Waiting reasons of a container on a node that the kubelet cannot create or start (yet). */
const NOT_STARTING_REASONS = new Set(['ContainerCreating', 'CreateContainerConfigError', 'CreateContainerError']);

/** A scheduled pod whose container waits to be created: the waiting reason and the kubelet's message. */
export function notStarting(pod: V1Pod): { reason: string; message?: string } | undefined {
  if (!pod.spec?.nodeName || pod.status?.phase !== 'Pending') return undefined;
  for (const cs of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
    const w = cs.state?.waiting;
    if (w?.reason && NOT_STARTING_REASONS.has(w.reason)) return { reason: w.reason, ...(w.message ? { message: w.message } : {}) };
  }
  return undefined;
}

/**
 * The verdict on a pod whose container has not started for the pod timeout, given its events:
 * the kubelet's newest warning (a FailedMount naming the missing secret, say) or its status
 * message. A pod in ContainerCreating with no warning is only slow (a large image being pulled):
 * no verdict. When the events cannot be read (no permission), the status is all there is.
 */
export function startFailure(
  stuck: { reason: string; message?: string },
  timeoutSeconds: number,
  events: CoreV1Event[] | { error: string },
): PodVerdict | undefined {
  if (!Array.isArray(events)) {
    return notCreatedVerdict(stuck.reason, timeoutSeconds, stuck.message ?? `(its events cannot be read: ${events.error})`);
  }
  const warnings = events
    .filter((e) => e.type === 'Warning' && e.reason !== 'FailedScheduling')
    .sort((a, b) => eventTime(b) - eventTime(a));
  // The volume's own error names what is missing; the kubelet's periodic 'Unable to attach or
  // mount volumes: … timed out waiting for the condition' only names the volume.
  const warning =
    warnings.find((e) => e.reason === 'FailedMount' && e.message?.startsWith('MountVolume.')) ??
    warnings.find((e) => e.reason === 'FailedMount') ??
    warnings[0];
  if (stuck.reason === 'ContainerCreating' && !warning) return undefined;
  const says = stuck.message ?? (warning ? `${warning.reason ?? 'Warning'}: ${warning.message ?? ''}` : stuck.reason);
  return notCreatedVerdict(stuck.reason, timeoutSeconds, says);
}

function notCreatedVerdict(reason: string, timeoutSeconds: number, says: string): PodVerdict {
  return {
    outcome: 'failed',
    exitCode: null,
    message: `the worker pod's container could not be started for ${timeoutSeconds}s (--kubernetesPodTimeout): ${reason}; the kubelet says: ${says}`,
    countsAsAttempt: true,
    retryable: false,
  };
}

function eventTime(e: CoreV1Event): number {
  const t = (e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp) as unknown as string | undefined;
  const ms = t ? new Date(t).getTime() : 0;
  return Number.isFinite(ms) ? ms : 0;
}

/** Whether a pod was taken away rather than failing on its own (a storage eviction is its own doing). */
export function disrupted(pod: V1Pod): string | undefined {
  const c = condition(pod, 'DisruptionTarget');
  if (c) return `${c.reason ?? 'disrupted'}${c.message ? `: ${c.message}` : ''}`;
  if (storageEviction(pod)) return undefined;
  if (pod.status?.reason === 'Evicted' || pod.status?.reason === 'NodeLost' || pod.status?.reason === 'Preempting') {
    return `${pod.status.reason}${pod.status.message ? `: ${pod.status.message}` : ''}`;
  }
  return undefined;
}

/** A job whose pods were taken away more often than allowed: it fails for good. */
export function tooManyDisruptions(count: number, max: number, last: string): PodVerdict {
  return {
    outcome: 'preempted',
    exitCode: null,
    message: `the worker pod was taken away ${count} times, more than the ${max} that --kubernetesMaxDisruptions allows (the last time: ${last}); the job is not run again`,
    countsAsAttempt: true,
    retryable: false,
  };
}

/** The outcome of a pod that has ended (phase Succeeded or Failed). */
export function podVerdict(pod: V1Pod): PodVerdict {
  const cs = pod.status?.containerStatuses?.[0];
  const term = cs?.state?.terminated ?? cs?.lastState?.terminated;
  const exitCode = term?.exitCode ?? null;
  const storage = storageEviction(pod);
  if (storage) {
    const disk = quantityBytes(pod.spec?.containers?.[0]?.resources?.limits?.['ephemeral-storage']);
    return {
      outcome: 'disk',
      exitCode,
      message: `out of disk: the pod was evicted for using more local storage than its disk request${disk !== undefined ? ` of ${disk} bytes` : ''} (the kubelet says: ${storage}); ask for more with require({ disk })`,
      countsAsAttempt: true,
      retryable: true,
    };
  }
  const dis = disrupted(pod);
  if (dis) {
    return {
      outcome: 'preempted',
      exitCode,
      message: `the pod was taken away (${dis}); not counted against the job's tries`,
      countsAsAttempt: false,
      retryable: true,
    };
  }
  if (term?.reason === 'OOMKilled') {
    const limit = pod.spec?.containers?.[0]?.resources?.limits?.['memory'];
    return {
      outcome: 'memory',
      exitCode,
      message: `out of memory: the worker was OOM-killed${limit ? ` at its limit of ${limit} bytes` : ''}; ask for more with require({ memory })`,
      countsAsAttempt: true,
      retryable: true,
    };
  }
  if (pod.status?.phase === 'Succeeded' || exitCode === 0) {
    return { outcome: 'succeeded', exitCode: 0, message: 'succeeded', countsAsAttempt: true, retryable: true };
  }
  if (pod.status?.reason === 'DeadlineExceeded') {
    return { outcome: 'deadline', exitCode, message: `the pod ran past its deadline`, countsAsAttempt: true, retryable: true };
  }
  return {
    outcome: 'failed',
    exitCode,
    message:
      exitCode !== null
        ? `the worker exited with code ${exitCode}${term?.reason && term.reason !== 'Error' ? ` (${term.reason})` : ''}`
        : `the pod failed${pod.status?.reason ? ` (${pod.status.reason})` : ''}`,
    countsAsAttempt: true,
    retryable: true,
  };
}

/** The outcome of a Job that finished without a pod to read (deleted, deadline). */
export function jobVerdict(job: V1Job): PodVerdict | undefined {
  if (condition(job, 'Complete') || condition(job, 'SuccessCriteriaMet')) {
    return { outcome: 'succeeded', exitCode: 0, message: 'succeeded', countsAsAttempt: true, retryable: true };
  }
  const failed = condition(job, 'Failed') ?? condition(job, 'FailureTarget');
  if (!failed) return undefined;
  if (failed.reason === 'DeadlineExceeded') {
    return {
      outcome: 'deadline',
      exitCode: null,
      message: `the Job ran past its deadline${failed.message ? `: ${failed.message}` : ''}`,
      countsAsAttempt: true,
      retryable: true,
    };
  }
  return {
    outcome: 'failed',
    exitCode: null,
    message: `the Job failed (${failed.reason ?? 'unknown reason'}${failed.message ? `: ${failed.message}` : ''})`,
    countsAsAttempt: true,
    retryable: true,
  };
}
