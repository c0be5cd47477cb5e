/**
 * Deleting worker Jobs: one at a time when a batch job ends or is killed, all of a workflow's
 * at its end (delete-collection by label, or one by one where the Role lacks that verb),
 * leftovers of an earlier leader before a restart issues anything, and `toil clean`'s sweep
 * for a leader that died. Deletion propagates to pods in the background.
 *
 * Shutdown within the grace period (SIGTERM, `toil kill`, a lost lease): Kubernetes gives a
 * terminating pod `terminationGracePeriodSeconds` (30 s by default) before it is killed, and a
 * leader with thousands of running worker Jobs must be done by then. The rules:
 * - **One request, whatever the number of Jobs.** The leader's shutdown sends one
 *   `deletecollection` of Jobs with the workflow's label selector and `propagationPolicy:
 *   Background` before anything else: no log is read, no Job is deleted one by one, no job
 *   store write waits in front of it. The API server deletes the Jobs at once (Background: the
 *   owners go first) and its garbage collector deletes their pods afterwards, server-side, at
 *   the server's pace; the leader does not wait for pods. Its cost on our side does not grow
 *   with the number of Jobs (the server's does, as for `kubectl delete jobs -l`).
 * - **The rate limiter is not in the way.** The bulk delete takes its token from a limiter of
 *   its own, so it is never queued behind the workflow's own requests (creates, log reads and
 *   deletes waiting for the shared limiter's tokens), and its retries are bounded to a few
 *   seconds so that a failing API server cannot keep the leader past its grace period.
 * - **Only where the Role lacks `deletecollection`** are the Jobs listed and deleted one by
 *   one (at the limiter's pace: 200 Jobs at 20/s take 10 s; thousands do not fit in 30 s —
 *   the manifests' Role grants the verb).
 * - **A leader killed anyway** (SIGKILL, node lost) leaves its Jobs behind. In the cluster they
 *   carry an ownerReference to the leader's own Job, so deleting that Job (or its
 *   `ttlSecondsAfterFinished`) lets the garbage collector remove them; in every case
 *   `toil clean <jobStore>` finds them from the job store's record of where the leader ran
 *   (kubePlacement.ts) and deletes them; `--restart` deletes them before issuing anything.
 */
import { ToilError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { kubeScope, listJobs, probeCluster, type KubeScope } from './kubeCluster.js';
import type { ClusterAccess } from './kubeConfig.js';
import { apiCall, KubernetesApiError, type RetryPolicy } from './kubeRetry.js';
import { workflowSelector } from './kubernetesSpec.js';
import { RateLimiter } from './rateLimiter.js';

/** Deletes one Job (a Job already gone is fine); failures are logged, not thrown. */
export async function deleteJob(scope: KubeScope, name: string): Promise<void> {
  try {
    await apiCall(
      `delete Job ${name}`,
      scope.limiter,
      () =>
        scope.batch
          .deleteNamespacedJob({ name, namespace: scope.namespace, propagationPolicy: 'Background', gracePeriodSeconds: 0 })
          .then(() => true),
      { accept: (info) => (info.status === 404 ? true : undefined) },
    );
  } catch (e) {
    scope.log.warning(`cannot delete Job ${name}: ${errorMessage(e)}`);
  }
}

/** The workflow's Jobs now in the cluster. */
export async function listWorkflowJobs(scope: KubeScope): Promise<string[]> {
  const list = await listJobs(scope);
  return list.items.map((j) => j.metadata?.name).filter((n): n is string => n !== undefined);
}

/** The bulk delete's own limiter: one request (and its few retries), never queued behind others. */
const bulkLimiter = new RateLimiter(10, 10);

/** Retries of the bulk delete: a few seconds at most, well inside a pod's grace period. */
const BULK_RETRY: RetryPolicy = { attempts: 5, baseMs: 200, maxMs: 2000 };

/** Deletes every Job (and pod) of the workflow; `why` goes into the warning if it cannot. */
export async function deleteAllJobs(scope: KubeScope, why: string): Promise<void> {
  try {
    await apiCall(
      "delete the workflow's Jobs",
      bulkLimiter,
      () =>
        scope.batch.deleteCollectionNamespacedJob({
          namespace: scope.namespace,
          labelSelector: scope.selector,
          propagationPolicy: 'Background',
          gracePeriodSeconds: 0,
        }),
      { policy: BULK_RETRY },
    );
    return;
  } catch (e) {
    if (!(e instanceof KubernetesApiError) || (e.info.status !== 403 && e.info.status !== 405)) {
      scope.log.warning(`cannot delete the workflow's Jobs (${why}): ${errorMessage(e)}`);
      return;
    }
  }
  // The Role lacks deletecollection: one by one.
  for (const name of await listWorkflowJobs(scope)) await deleteJob(scope, name);
}

/**
 * Deletes the worker Jobs of a workflow whose leader is gone (for `toil clean`), in the
 * namespace of `access`, as at the end of a workflow. Returns how many there were; a
 * UsageError naming the server when it cannot be reached or refuses, a ToilError when Jobs
 * are left.
 */
export async function deleteWorkflowJobs(access: ClusterAccess, workflowId: string, log: Logger): Promise<number> {
  await probeCluster(access, workflowSelector(workflowId));
  const scope = kubeScope(access, { workflowId, log });
  const names = await listWorkflowJobs(scope);
  if (names.length === 0) return 0;
  await deleteAllJobs(scope, "for 'toil clean'");
  const left = await listWorkflowJobs(scope);
  if (left.length > 0) {
    throw new ToilError(
      'INTERNAL',
      `${left.length} worker Job(s) of workflow ${workflowId} could not be deleted: ${left.slice(0, 5).join(', ')}`,
    );
  }
  return names.length;
}
