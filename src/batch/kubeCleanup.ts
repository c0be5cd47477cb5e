/**
 * Deleting worker Jobs: one at a time when a batch job ends or is killed, all of a workflow's
 * at its end (delete-collection by label, or one by one where the Role lacks that verb),
 * leftovers of an earlier leader before a restart issues anything, and `toil clean`'s sweep
 * for a leader that died. Deletion propagates to pods in the background.
 */
import { BatchV1Api } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { KubeScope } from './kubeCluster.js';
import { loadClusterAccess, type ClusterAccess } from './kubeConfig.js';
import { apiCall, KubernetesApiError } from './kubeRetry.js';
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
  const list = await apiCall('list Jobs', scope.limiter, () =>
    scope.batch.listNamespacedJob({ namespace: scope.namespace, labelSelector: scope.selector }),
  );
  return list.items.map((j) => j.metadata?.name).filter((n): n is string => n !== undefined);
}

/** Deletes every Job (and pod) of the workflow; `why` goes into the warning if it cannot. */
export async function deleteAllJobs(scope: KubeScope, why: string): Promise<void> {
  try {
    await apiCall("delete the workflow's Jobs", scope.limiter, () =>
      scope.batch.deleteCollectionNamespacedJob({
        namespace: scope.namespace,
        labelSelector: scope.selector,
        propagationPolicy: 'Background',
        gracePeriodSeconds: 0,
      }),
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
 * Deletes the worker Jobs of a workflow whose leader is gone (for `toil clean`). Returns how
 * many there were, or undefined when no cluster is configured.
 */
export async function deleteWorkflowJobs(
  workflowId: string,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number | undefined> {
  let access: ClusterAccess;
  try {
    access = loadClusterAccess(env);
  } catch {
    return undefined;
  }
  const api = access.kc.makeApiClient(BatchV1Api);
  const limiter = new RateLimiter(20, 40);
  const namespace = access.namespace;
  const list = await apiCall(
    'list Jobs',
    limiter,
    () => api.listNamespacedJob({ namespace, labelSelector: workflowSelector(workflowId) }),
    {
      policy: { attempts: 3, baseMs: 200, maxMs: 2000 },
    },
  );
  for (const j of list.items) {
    const name = j.metadata?.name;
    if (!name) continue;
    await apiCall(
      `delete Job ${name}`,
      limiter,
      () => api.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }).then(() => true),
      {
        accept: (info) => (info.status === 404 ? true : undefined),
      },
    ).catch((e: unknown) => logger.warning(errorMessage(e)));
  }
  return list.items.length;
}
