import { z } from 'zod';
import { JsonSchema } from '../job/types.js';
import { parseStored } from './records.js';
import type { JobStore } from './types.js';

/** The shared file that describes the workflow a job store holds. */
export const WORKFLOW_INFO = 'workflow.json';

export const WorkflowInfoSchema = z.object({
  workflowId: z.string(),
  rootJobId: z.string(),
  bundleHash: z.string(),
  workflowFile: z.string(),
  createdAt: z.string(),
  defaults: z.object({ cores: z.number(), memory: z.number(), disk: z.number(), preemptible: z.boolean() }),
  /** Exports to do once the workflow succeeds: an encoded FileID (or promise of one) and a URL. */
  exports: z.array(z.object({ file: JsonSchema, url: z.string() })),
  /** The options the first run was given (defaults left out), which a restart keeps. */
  options: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  /** The workflow's arguments (`wf.args`) at the first run. */
  args: z.array(z.string()).optional(),
  /** The node cache: files through it (`--disableCaching false`) and its cap; absent in older stores (on). */
  caching: z.object({ enabled: z.boolean(), cacheSize: z.number().optional() }).optional(),
  /** Workers measure each job and send the figures to the leader (`--stats`, `--trace` of the current run). */
  measure: z.boolean().optional(),
  /** Set once the workflow has finished successfully. */
  completed: z.boolean().optional(),
});

export type WorkflowInfo = z.infer<typeof WorkflowInfoSchema>;

export async function readWorkflowInfo(store: JobStore): Promise<{ info: WorkflowInfo; version: string } | undefined> {
  const got = await store.readShared(WORKFLOW_INFO);
  if (!got) return undefined;
  return { info: parseStored(WorkflowInfoSchema, got.value, `${store.locator}: ${WORKFLOW_INFO}`), version: got.version };
}

export async function writeWorkflowInfo(store: JobStore, info: WorkflowInfo, ifVersion?: string): Promise<string> {
  return store.writeShared(WORKFLOW_INFO, JSON.stringify(info, null, 2), ifVersion === undefined ? {} : { ifVersion });
}
