/**
 * Where a workflow's worker Jobs are, kept in the job store so that `toil clean` finds the Jobs
 * of a leader that died without any Kubernetes flags or KUBECONFIG: the shared file
 * `kubernetes-placement.json` names the batch system, the API server (URL and CA fingerprint),
 * the namespace and the label selector of the workflow's Jobs.
 *
 * Rules:
 * - The leader writes it before it creates its first Job (so every Job it ever made is named by
 *   a record), and again after a restart, which may run elsewhere.
 * - `toil clean` reads it, finds credentials for that server (kubeConfig.ts: the in-cluster
 *   account when it is that server, else the kubeconfig context whose cluster is) and deletes
 *   the Jobs with that selector in that namespace. A store without a record (a local workflow,
 *   or one made before records) has no Jobs to find this way.
 * - The selector is always the workflow's own (managed-by toil-ts, this workflow id): a record
 *   naming anything else is refused, so a bad record cannot make `toil clean` delete others' Jobs.
 */
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';
import { serverIdentity, type ClusterAccess } from './kubeConfig.js';
import { workflowSelector } from './kubernetesSpec.js';

export const PLACEMENT_FILE = 'kubernetes-placement.json';

const PlacementSchema = z.object({
  batchSystem: z.literal('kubernetes'),
  server: z.string().min(1),
  caSha256: z.string().optional(),
  namespace: z.string().min(1),
  workflowId: z.string().min(1),
  labelSelector: z.string().min(1),
  recordedAt: z.string(),
});
export type Placement = z.infer<typeof PlacementSchema>;

/** The record for a workflow whose Jobs go through `access`. */
export function placementOf(access: ClusterAccess, workflowId: string): Placement {
  const id = serverIdentity(access);
  return {
    batchSystem: 'kubernetes',
    server: id.server,
    ...(id.caSha256 ? { caSha256: id.caSha256 } : {}),
    namespace: access.namespace,
    workflowId,
    labelSelector: workflowSelector(workflowId),
    recordedAt: new Date().toISOString(),
  };
}

export async function writePlacement(store: JobStore, placement: Placement): Promise<void> {
  await store.writeShared(PLACEMENT_FILE, JSON.stringify(placement));
}

/** The record in `store`, if there is one; a UsageError if it is unreadable or names others' Jobs. */
export async function readPlacement(store: JobStore): Promise<Placement | undefined> {
  const got = await store.readShared(PLACEMENT_FILE);
  if (!got) return undefined;
  const p = parseStored(PlacementSchema, got.value, `${store.locator}: ${PLACEMENT_FILE}`);
  if (p.labelSelector !== workflowSelector(p.workflowId)) {
    throw new UsageError(`${store.locator}: ${PLACEMENT_FILE} names the selector '${p.labelSelector}', not workflow ${p.workflowId}'s`);
  }
  return p;
}
