/**
 * toil-ts: Toil-style workflows in TypeScript.
 *
 * ```ts
 * import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
 *
 * export const hello = defineJob('hello', async (ctx: JobContext, name: string) => {
 *   ctx.log(`Hello, ${name}`);
 *   return `Hello, ${name}`;
 * });
 *
 * export default function workflow(wf: WorkflowContext) {
 *   return hello(wf.args[0] ?? 'world').require({ memory: '2G', cores: 1, disk: '3G' });
 * }
 * ```
 *
 * Run it with `npx toil run hello.ts ./my-jobstore`.
 */
export { defineJob, Job, type JobFactory, type PromisedArgs, type Promised, type Unpromise } from './job/job.js';
export { JobPromise, type PromisePath } from './job/promise.js';
export type { JobContext, WorkflowContext, FileStore } from './job/context.js';
export type { Requirements } from './job/requirements.js';
export type { FileID, Accelerator, ResolvedRequirements } from './job/types.js';
export { Toil, WorkflowFailedError, type ToilOptions, type WorkflowBuilder } from './workflow/toil.js';
export type { ToilConfig, ToilConfigInput } from './workflow/config.js';
export {
  ToilError,
  UsageError,
  GraphError,
  SerializationError,
  JobStoreError,
  ConflictError,
  NotFoundError,
  LeaseHeldError,
  ResourceError,
  TransientError,
  type ErrorCode,
} from './errors.js';
export type { Size } from './size.js';
