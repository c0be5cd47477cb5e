/**
 * `toil clean <jobStore>`: deletes a job store and, first, the worker Jobs its leader left in a
 * Kubernetes cluster. They are found from the store's record of where the leader ran
 * (kubePlacement.ts) with whatever credentials here reach that API server (the in-cluster
 * account, or the kubeconfig context for that server), with no flags. When they cannot be
 * deleted, nothing is: the error names the server and the store is kept, since it holds the
 * only record of where the Jobs are (`--no-kubernetes` deletes the store anyway).
 *
 * Like a leader, `toil clean` takes the store's lease first (lease.ts: it waits one lease period
 * when the holder cannot be seen to have ended, and is refused if the holder renews), and
 * destroys the store through the lease's fence. `--force` skips the lease.
 */
import { LeaseHeldError, UsageError, errorMessage } from '../errors.js';
import { FencedJobStore } from '../jobstore/fenced.js';
import { openJobStore } from '../jobstore/open.js';
import type { JobStore } from '../jobstore/types.js';
import { readWorkflowInfo } from '../jobstore/workflowInfo.js';
import { Lease } from '../leader/lease.js';
import { createLogger } from '../log.js';
import { oneLine } from './exit.js';

export interface CleanOptions {
  force?: boolean;
  /** true: also try the current context for a store with no record; false: leave Kubernetes alone. */
  kubernetes?: boolean;
}

export async function cleanStore(locator: string, o: CleanOptions, say: (line: string) => void): Promise<void> {
  const store = await openJobStore(locator);
  if (!(await store.exists())) {
    say(`nothing to clean: ${store.locator} does not exist`);
    return;
  }
  if (o.force) {
    if (o.kubernetes !== false) await cleanWorkerJobs(store, o.kubernetes === true, say);
    await store.destroy();
  } else {
    const lease = new Lease(store, { log: { info: say, warning: say } });
    try {
      await lease.acquire();
    } catch (e) {
      if (e instanceof LeaseHeldError) throw new LeaseHeldError(`${e.message}, or pass --force to delete it anyway`, e.context);
      throw e;
    }
    try {
      if (o.kubernetes !== false) await cleanWorkerJobs(store, o.kubernetes === true, say);
      lease.stopRenewing();
      await new FencedJobStore(store, lease).destroy();
    } finally {
      await lease.release();
    }
  }
  say(`removed ${store.locator}`);
}

async function cleanWorkerJobs(store: JobStore, explicit: boolean, say: (line: string) => void): Promise<void> {
  const k8s = await import('../batch/kubernetes.js');
  const log = createLogger('warning');
  const placement = await k8s.readPlacement(store);
  if (placement) {
    const where = `workflow ${placement.workflowId}'s worker Jobs (namespace '${placement.namespace}' at ${placement.server})`;
    try {
      const access = k8s.accessForServer({ server: placement.server, caSha256: placement.caSha256 }, placement.namespace);
      const n = await k8s.deleteWorkflowJobs(access, placement.workflowId, log);
      if (n > 0)
        say(`deleted ${n} worker Job(s) of workflow ${placement.workflowId} in namespace '${placement.namespace}' at ${placement.server}`);
    } catch (e) {
      throw new UsageError(
        `cannot delete ${where}: ${errorMessage(e)}; ${store.locator} is kept, as it records where they are (--no-kubernetes deletes it anyway)`,
      );
    }
    return;
  }
  // A store without a record (made before records were kept): the current context, if any.
  const info = await readWorkflowInfo(store);
  if (!info || !(explicit || process.env['KUBECONFIG'] || process.env['KUBERNETES_SERVICE_HOST'])) return;
  try {
    const n = await k8s.deleteWorkflowJobs(k8s.loadClusterAccess(), info.info.workflowId, log);
    if (n > 0) say(`deleted ${n} worker Job(s) of workflow ${info.info.workflowId}`);
  } catch (e) {
    say(`could not delete the workflow's worker Jobs: ${oneLine(e)}`);
  }
}
