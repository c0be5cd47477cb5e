/**
 * When the cluster refuses to create a worker's pod (or its Job): a pure reading of the API
 * server's message, as admission writes it — in the 403 of a create, and, for the pods the Job
 * controller creates, in the Job's `FailedCreate` events (`Error creating: <message>`), since a
 * Job whose pod is refused gets no condition and no pod. The rules:
 *
 * - **Pod Security** (`violates PodSecurity "<level>:<version>": …`) can never succeed while the
 *   namespace keeps its level: the job fails at once, saying what to change.
 * - **A quota that is full** (`exceeded quota: <name>, requested: …, used: …, limited: …`) frees
 *   up as other pods end: it is waited out, shown as waiting for quota, and fails only after
 *   --kubernetesPodTimeout, naming the quota.
 * - **A quota that needs what the pod does not say** (`failed quota: <name>: must specify …`) and
 *   **LimitRange bounds** (`maximum … usage per Container is …`) can never succeed: fail at once.
 * - Anything else (the API server having a bad minute) is waited out like a full quota.
 */

import type { PodVerdict } from './podOutcome.js';

export type RefusalKind = 'pod-security' | 'quota' | 'quota-needs-request' | 'limit-range' | 'other';

export interface Refusal {
  kind: RefusalKind;
  /** Whether no retry can help while the namespace stays as it is. */
  final: boolean;
  /** The API server's words, without the `Error creating: ` of an event. */
  message: string;
  /** The ResourceQuota's name, for a quota. */
  quota?: string;
  /** What to change, for people. */
  advice?: string;
}

const POD_SECURITY = /violates PodSecurity "([a-z]+):[^"]*"/;
const QUOTA_EXCEEDED = /exceeded quota: ([a-z0-9.-]+)/;
const QUOTA_NEEDS = /failed quota: ([a-z0-9.-]+): must specify/;
const LIMIT_RANGE = /(maximum|minimum) [a-z-]+ usage per (Container|Pod) is|max limit to request ratio per (Container|Pod) is/;

/** The advice for a Pod Security refusal: for a host path, which level it needs and the other way out. */
function podSecurityAdvice(level: string, message: string): string {
  if (/hostPath volumes/.test(message)) {
    return (
      `worker pods with a host path (--kubernetesHostPath, TOIL_KUBERNETES_HOST_PATH) are admitted only at the 'privileged' Pod Security level, ` +
      `and this namespace enforces '${level}': label it pod-security.kubernetes.io/enforce=privileged, ` +
      `or run without a host path (each pod then caches in a volume of its own, admitted under 'restricted')`
    );
  }
  return `the namespace's Pod Security level '${level}' forbids what the worker pod asks for (see the Security section of the README)`;
}

/** Reads a refusal (a message with no admission words in it is 'other'). */
export function readRefusal(raw: string): Refusal {
  const message = raw.replace(/^Error creating: /, '');
  const ps = POD_SECURITY.exec(message);
  if (ps) return { kind: 'pod-security', final: true, message, advice: podSecurityAdvice(ps[1]!, message) };
  const needs = QUOTA_NEEDS.exec(message);
  if (needs) {
    return {
      kind: 'quota-needs-request',
      final: true,
      message,
      quota: needs[1]!,
      advice: `the ResourceQuota '${needs[1]!}' counts a resource the worker pod does not ask for; give the namespace a LimitRange with defaults for it`,
    };
  }
  const full = QUOTA_EXCEEDED.exec(message);
  if (full) return { kind: 'quota', final: false, message, quota: full[1]! };
  if (LIMIT_RANGE.test(message)) {
    return {
      kind: 'limit-range',
      final: true,
      message,
      advice: "the namespace's LimitRange does not allow the job's requirements: change the job's .require() or the LimitRange",
    };
  }
  return { kind: 'other', final: false, message };
}

/** How a refusal being waited out reads in the progress line. */
export function refusalWait(r: Refusal): { what: string; example: string } {
  return r.kind === 'quota' ? { what: 'waiting for quota', example: r.message } : { what: 'waiting to be created', example: r.message };
}

/** The verdict for a refusal that can never succeed: at once, saying what to change. */
export function refusedVerdict(r: Refusal): PodVerdict {
  return {
    outcome: 'refused',
    exitCode: null,
    message: `the cluster refused to create the worker pod: ${r.message}${r.advice ? `; ${r.advice}` : ''}`,
    countsAsAttempt: true,
    retryable: false,
  };
}

/** The verdict for a pod (or Job) that could not be created for the pod timeout: naming the quota, or what the cluster said last. */
export function notCreatedInTime(r: Refusal | undefined, timeoutSeconds: number): PodVerdict {
  const why =
    r === undefined
      ? 'the Job controller created no pod and recorded no reason'
      : r.quota
        ? `the ResourceQuota '${r.quota}' stayed full (${r.message})`
        : `the cluster says: ${r.message}`;
  return {
    outcome: 'refused',
    exitCode: null,
    message: `no worker pod could be created for ${timeoutSeconds}s (--kubernetesPodTimeout): ${why}`,
    countsAsAttempt: true,
    retryable: true,
  };
}
