/**
 * A worker pod's events, read once and only when its container has not started for the pod
 * timeout: the kubelet says why (a FailedMount naming the missing secret) in events, not in the
 * pod's status, and watching every event of the namespace would cost a stream for a rare case.
 * One list, selected by the pod's name and uid (a field selector every API server supports).
 */
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { KubeScope } from './kubeCluster.js';
import { apiCall } from './kubeRetry.js';

/** The pod's events, or why they cannot be read (the verdict then rests on the pod's status). */
export async function readPodEvents(scope: KubeScope, pod: V1Pod): Promise<CoreV1Event[] | { error: string }> {
  const name = pod.metadata?.name;
  const uid = pod.metadata?.uid;
  if (!name) return [];
  const fieldSelector = `involvedObject.kind=Pod,involvedObject.name=${name}${uid ? `,involvedObject.uid=${uid}` : ''}`;
  try {
    const list = await apiCall(`list the events of pod ${name}`, scope.limiter, () =>
      scope.core.listNamespacedEvent({ namespace: scope.namespace, fieldSelector }),
    );
    return list.items;
  } catch (e) {
    scope.log.debug(`cannot read the events of pod ${name}: ${errorMessage(e)}`);
    return { error: errorMessage(e) };
  }
}
