/**
 * Where a worker pod spent its time and where it ran: a pure reading of the pod as the API
 * reports it, for the statistics of an attempt (never for its verdict). The phases, each the
 * time the pod's own status gives for it (absent when the pod never got there):
 *
 * - `created`: the pod object's creationTimestamp;
 * - `scheduled`: its `PodScheduled` condition turning True (a node was chosen);
 * - `initialized`: its `PodReadyToStartContainers` condition turning True (sandbox and volumes
 *   ready; clusters before 1.29 lack it, then `Initialized`): what follows until `started` is
 *   the image pull and the container's creation;
 * - `started`: the worker container's `startedAt` (running or terminated state);
 * - `finished`: its terminated state's `finishedAt`.
 *
 * A pod that has ended has its `PodReadyToStartContainers` False again (its sandbox is gone):
 * `Initialized` speaks for it then. A condition the kubelet recorded only after a later phase
 * (its status is written in batches, and times are whole seconds) counts as reached at that
 * later phase, so that the phases are always in order.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { AttemptPlace } from './types.js';

/** The pod's phases and placement. */
export function podAccount(pod: V1Pod): AttemptPlace {
  const cs = pod.status?.containerStatuses?.[0];
  const state = cs?.state;
  const phases = {
    created: timeOf(pod.metadata?.creationTimestamp),
    scheduled: conditionTime(pod, 'PodScheduled'),
    initialized: conditionTime(pod, 'PodReadyToStartContainers') ?? conditionTime(pod, 'Initialized'),
    started: timeOf(state?.terminated?.startedAt ?? state?.running?.startedAt),
    finished: timeOf(state?.terminated?.finishedAt),
  };
  const order = ['created', 'scheduled', 'initialized', 'started', 'finished'] as const;
  for (let i = order.length - 2; i >= 0; i--) {
    const later = order
      .slice(i + 1)
      .map((k) => phases[k])
      .find((v) => v !== undefined);
    const at = phases[order[i]!];
    if (at !== undefined && later !== undefined && at > later) phases[order[i]!] = later;
  }
  const node = pod.spec?.nodeName;
  const name = pod.metadata?.name;
  return {
    ...(node ? { node } : {}),
    ...(name ? { pod: name } : {}),
    phases: Object.fromEntries(Object.entries(phases).filter(([, v]) => v !== undefined)) as AttemptPlace['phases'],
  };
}

function conditionTime(pod: V1Pod, type: string): number | undefined {
  const c = pod.status?.conditions?.find((x) => x.type === type && x.status === 'True');
  return timeOf(c?.lastTransitionTime);
}

/** A time the client hands over as a Date or an RFC 3339 string (watch events), in ms. */
function timeOf(t: unknown): number | undefined {
  if (t === undefined || t === null) return undefined;
  const ms = new Date(t as string).getTime();
  // The API's zero time (a container state the runtime never timed) is no time at all.
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}
