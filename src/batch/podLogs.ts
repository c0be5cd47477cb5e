/**
 * Log capture for failed worker pods: the last lines the worker printed, read from the pod's
 * log (one request, failures only) and kept in the job store as the job's log unless the
 * worker managed to write one itself. The leader shows it with the failure.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { JobStore } from '../jobstore/types.js';
import type { KubeScope } from './kubeCluster.js';
import { apiCall } from './kubeRetry.js';

export const POD_LOG_TAIL_LINES = 40;

/**
 * Reads the tail of a pod's log and keeps it as the job's log when the job store has none.
 * Returns the tail; undefined for a pod that never ran on a node or whose log cannot be read.
 */
export async function keepPodLogTail(
  scope: KubeScope,
  store: JobStore,
  pod: V1Pod | undefined,
  jobId: string,
): Promise<string | undefined> {
  const name = pod?.metadata?.name;
  if (!name || !pod.spec?.nodeName) return undefined;
  try {
    const tail = await apiCall(`read the log of pod ${name}`, scope.limiter, () =>
      scope.core.readNamespacedPodLog({ name, namespace: scope.namespace, tailLines: POD_LOG_TAIL_LINES }),
    );
    if (tail && (await store.readJobLog(jobId)) === undefined) await store.writeJobLog(jobId, tail);
    return tail;
  } catch (e) {
    scope.log.debug(`cannot keep the log of pod ${name}: ${errorMessage(e)}`);
    return undefined;
  }
}
