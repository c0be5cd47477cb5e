/**
 * What a workflow bundle gets when it imports `toil-ts`: the API for writing jobs (and the
 * error classes). The workflow layer (`Toil`) is for the programs that start workflows, not for
 * job code, so it is not part of it — which also keeps the worker from depending on the layers
 * above it.
 */
export { defineJob, Job, type JobFactory, type PromisedArgs, type Promised, type Unpromise } from './job.js';
export { JobPromise, type PromisePath } from './promise.js';
export type { JobContext, WorkflowContext, FileStore, OnceOptions, ReadFileOptions } from './context.js';
export type { Requirements } from './requirements.js';
export type { FileID, Accelerator, ResolvedRequirements } from './types.js';
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
} from '../errors.js';
export type { Size } from '../size.js';
