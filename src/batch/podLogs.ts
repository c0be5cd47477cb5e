/**
 * Log capture for failed worker pods: the last lines the worker printed, read from the pod's
 * log (failures only) before its Job is deleted. The leader shows them with the failure and,
 * when the worker could not save the attempt's log itself, keeps them as the job's log.
 *
 * Bounds: at most POD_LOG_TAIL_LINES log entries and POD_LOG_LIMIT_BYTES bytes. The kubelet
 * applies `limitBytes` from the start of the tail (it seeks to the first of the last
 * `tailLines` entries and writes forward until the limit), so an answer cut short has lost the
 * last lines, which are what a failure's reader needs (a chatty tool's final error). Such an
 * answer is asked for again with half as many lines, down to one: containerd writes a line
 * longer than 16 KiB as several entries, so the last entry always fits within the limit.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { KubeScope } from './kubeCluster.js';
import { apiCall } from './kubeRetry.js';

export const POD_LOG_TAIL_LINES = 40;
export const POD_LOG_LIMIT_BYTES = 32 * 1024;

/** Whether an answer reached the byte limit (a character cut in two decodes as up to 3 bytes). */
function cutShort(text: string): boolean {
  return Buffer.byteLength(text) >= POD_LOG_LIMIT_BYTES - 3;
}

/**
 * The last lines of a pod's log within the bounds above; undefined for a pod that never ran
 * on a node or whose log cannot be read.
 */
export async function readPodLogTail(scope: KubeScope, pod: V1Pod | undefined): Promise<string | undefined> {
  const name = pod?.metadata?.name;
  if (!name || !pod.spec?.nodeName) return undefined;
  try {
    for (let tailLines = POD_LOG_TAIL_LINES; ; tailLines = Math.max(1, Math.floor(tailLines / 2))) {
      const text = await apiCall(`read the log of pod ${name}`, scope.limiter, () =>
        scope.core.readNamespacedPodLog({ name, namespace: scope.namespace, tailLines, limitBytes: POD_LOG_LIMIT_BYTES }),
      );
      if (!cutShort(text) || tailLines === 1) return text;
    }
  } catch (e) {
    scope.log.debug(`cannot read the log of pod ${name}: ${errorMessage(e)}`);
    return undefined;
  }
}
