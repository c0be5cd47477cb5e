/**
 * Core types of toil-ts. Terminology (see DESIGN.md, "Words"):
 *
 * - **workflow**: a graph of jobs started by one `toil run`; it has a workflow id.
 * - **job**: a unit of user code (a `defineJob` function or a `Job` subclass) plus its
 *   requirements. A job has **children** (run after the job's `run()` returns, in parallel)
 *   and **follow-ons** (run after the job, its children and all their successors finish).
 * - **successor**: a child or a follow-on.
 * - **promise** (`job.rv(...path)`): a placeholder for a job's return value, or a path into it,
 *   resolved before the job that receives it runs.
 * - **job record** ({@link JobRecord}): what the job store keeps for a job: its definition name,
 *   encoded arguments, requirements, edges, state and result.
 * - **checkpoint**: a job that is run again, with its successors discarded, when a job below it
 *   fails for good, while it has tries left.
 */
import { z } from 'zod';

/** A JSON value as stored in the job store. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export const JsonSchema: z.ZodType<Json> = z.lazy(() =>
  z.union([z.null(), z.boolean(), z.number(), z.string(), z.array(JsonSchema), z.record(z.string(), JsonSchema)]),
);

/** One kind of accelerator a job needs, e.g. `{ count: 1, kind: 'gpu', model: 'nvidia-tesla-t4' }`. */
export interface Accelerator {
  count: number;
  kind: 'gpu';
  model?: string;
  brand?: string;
}

export const AcceleratorSchema = z.object({
  count: z.number().int().positive(),
  kind: z.literal('gpu'),
  model: z.string().optional(),
  brand: z.string().optional(),
});

/** Requirements as stored in a job record: only what the job asked for, sizes in bytes. */
export interface StoredRequirements {
  cores?: number;
  memory?: number;
  disk?: number;
  accelerators?: Accelerator[];
  preemptible?: boolean;
}

export const StoredRequirementsSchema = z.object({
  cores: z.number().positive().optional(),
  memory: z.number().int().nonnegative().optional(),
  disk: z.number().int().nonnegative().optional(),
  accelerators: z.array(AcceleratorSchema).optional(),
  preemptible: z.boolean().optional(),
});

/** Requirements with the workflow's defaults filled in. */
export interface ResolvedRequirements {
  cores: number;
  memory: number;
  disk: number;
  accelerators: Accelerator[];
  preemptible: boolean;
}

export type JobState = 'pending' | 'done' | 'failed';

/** The job store's record of one job. */
export interface JobRecord {
  id: string;
  /** Registered name of the definition (`defineJob(name, …)` or `Job.register(cls, name)`). */
  name: string;
  kind: 'function' | 'class';
  /** Function jobs: the encoded argument list. Class jobs: the encoded own fields. */
  payload: Json;
  requirements: StoredRequirements;
  checkpoint: boolean;
  children: string[];
  followOns: string[];
  /** How many leading entries of `children`/`followOns` were attached before the job ran. */
  staticChildren: number;
  staticFollowOns: number;
  /** Jobs with an edge (child or follow-on) into this one. */
  predecessors: string[];
  /** Jobs whose return values this job's payload refers to. */
  promiseDeps: string[];
  state: JobState;
  /** Tries left, set by the leader; `null` until the leader first schedules the job. */
  remainingTries: number | null;
  attempts: number;
  /** The encoded return value, once done. */
  result?: Json;
  /** Jobs whose return values the result refers to (a job that returned another's promise). */
  forwards?: string[];
  /** The successor the same worker went on to run after this job. */
  chainedInto?: string;
  /** Jobs created by the run that completed this job. */
  spawned?: string[];
  /** Files the job deleted; removed from the store once the job is committed. */
  filesToDelete?: string[];
  /** Last failure, for people. */
  failure?: string;
  /** The job that created this one (absent for the root and its static successors). */
  createdBy?: string;
}

export const JobRecordSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  kind: z.enum(['function', 'class']),
  payload: JsonSchema,
  requirements: StoredRequirementsSchema,
  checkpoint: z.boolean(),
  children: z.array(z.string()),
  followOns: z.array(z.string()),
  staticChildren: z.number().int().nonnegative(),
  staticFollowOns: z.number().int().nonnegative(),
  predecessors: z.array(z.string()),
  promiseDeps: z.array(z.string()),
  state: z.enum(['pending', 'done', 'failed']),
  remainingTries: z.number().int().nullable(),
  attempts: z.number().int().nonnegative(),
  result: JsonSchema.optional(),
  forwards: z.array(z.string()).optional(),
  chainedInto: z.string().optional(),
  spawned: z.array(z.string()).optional(),
  filesToDelete: z.array(z.string()).optional(),
  failure: z.string().optional(),
  createdBy: z.string().optional(),
}) satisfies z.ZodType<JobRecord>;

/** A file in the job store. Plain string so it can be passed between jobs as an argument. */
export type FileID = string;
