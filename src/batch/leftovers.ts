/**
 * An earlier leader's leftovers, cleared before a leader issues anything. The worker Jobs of an
 * earlier leader of this workflow (one that died, or was killed) are deleted first, then their
 * pods are waited for until none is left: a new leader never runs beside them, since a worker of
 * the earlier leader may still be running a job the new one is about to run again.
 *
 * The wait is bounded (--kubernetesRestartWait, by default LEFTOVER_WAIT_MS: well past the
 * 30 s a pod has by default to stop once deleted), says every PROGRESS_MS which pods it waits for, and ends in a TransientError naming
 * the pods still there (a pod on a node that no longer answers stays Running; a finalizer holds
 * a pod until it is removed). Nothing has been created then: the leader has not started.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { sleep } from '../concurrency.js';
import { TransientError } from '../errors.js';
import { listPods, type KubeScope } from './kubeCluster.js';
import { deleteAllJobs, listWorkflowJobs } from './kubeCleanup.js';

export const LEFTOVER_WAIT_MS = 120_000;
const POLL_MS = 1000;
const PROGRESS_MS = 10_000;
/** Pods named in a message; the rest are counted. */
const NAMED = 5;

/** Deletes an earlier leader's worker Jobs and waits for every pod of the workflow to be gone. */
export async function clearLeftovers(scope: KubeScope, waitMs = LEFTOVER_WAIT_MS): Promise<void> {
  const jobs = await listWorkflowJobs(scope);
  if (jobs.length > 0) {
    scope.log.info(`deleting ${jobs.length} worker Job(s) left by an earlier leader of this workflow`);
    await deleteAllJobs(scope, 'left by an earlier leader');
  }
  const started = Date.now();
  let noteAt = started;
  for (;;) {
    const pods = (await listPods(scope)).items;
    if (pods.length === 0) return;
    const waited = Date.now() - started;
    if (waited >= waitMs) throw stillThere(pods, waitMs);
    if (Date.now() >= noteAt) {
      scope.log.info(
        `waiting for ${pods.length} pod(s) of an earlier leader of this workflow to go (${seconds(waited)}s of at most ${seconds(waitMs)}s): ${describePods(pods)}`,
      );
      noteAt += PROGRESS_MS;
    }
    await sleep(POLL_MS);
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 1000);
}

/** A pod for people: its name, phase and node, whether it is being deleted, and what holds it. */
export function describePod(pod: V1Pod): string {
  const parts = [pod.status?.phase ?? 'Pending'];
  if (pod.spec?.nodeName) parts.push(`on ${pod.spec.nodeName}`);
  if (pod.metadata?.deletionTimestamp) parts.push('being deleted');
  const finalizers = pod.metadata?.finalizers ?? [];
  if (finalizers.length > 0) parts.push(`held by finalizer ${finalizers.join(', ')}`);
  return `${pod.metadata?.name ?? '(no name)'} (${parts.join(', ')})`;
}

/** Some pods for people: the first few described, the rest counted. */
export function describePods(pods: readonly V1Pod[]): string {
  const named = pods.slice(0, NAMED).map(describePod).join('; ');
  return pods.length > NAMED ? `${named}; and ${pods.length - NAMED} more` : named;
}

function stillThere(pods: readonly V1Pod[], waitMs: number): TransientError {
  return new TransientError(
    `${pods.length} pod(s) of an earlier leader of this workflow are still there after ${seconds(waitMs)}s, and a new leader must not run beside them: ${describePods(pods)}. ` +
      'A pod on a node that no longer answers, or held by a finalizer, stays until it is removed ' +
      '(kubectl delete pod --grace-period=0 --force <name>, or take its finalizer off); then run again',
    { context: { pods: pods.length } },
  );
}
