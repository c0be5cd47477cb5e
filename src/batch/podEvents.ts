/**
 * Events, read rarely and selected on the server (field selectors every API server supports),
 * since watching every event of the namespace would cost a stream for rare cases:
 * - a worker pod's, once, when its container has not started for the pod timeout: the kubelet
 *   says why (a FailedMount naming the missing secret) in events, not in the pod's status;
 * - the Jobs' FailedCreate events, while some Job has had no pod for a while: a pod refused at
 *   admission (Pod Security, a quota) leaves its Job with no pod and no condition, and only
 *   the Job controller's events say why.
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

/**
 * The FailedCreate events of the namespace's Jobs (one list, whatever the number of Jobs): why
 * the Job controller could not create their pods (Pod Security, a quota). Or why they cannot be
 * read.
 */
export async function readFailedCreates(scope: KubeScope): Promise<CoreV1Event[] | { error: string }> {
  try {
    const list = await apiCall("list the Jobs' FailedCreate events", scope.limiter, () =>
      scope.core.listNamespacedEvent({ namespace: scope.namespace, fieldSelector: 'involvedObject.kind=Job,reason=FailedCreate' }),
    );
    return list.items;
  } catch (e) {
    scope.log.debug(`cannot read the Jobs' FailedCreate events: ${errorMessage(e)}`);
    return { error: errorMessage(e) };
  }
}
