import type { Job } from './job.js';

/** A path into a job's return value: object keys and array indices. */
export type PromisePath = ReadonlyArray<string | number>;

/**
 * A placeholder for a job's return value, or for a value at `path` inside it. Pass it as an
 * argument to another job; it is replaced by the value before that job runs. Create one with
 * `job.rv(...path)`.
 */
export class JobPromise<T = unknown> {
  /** Only here so that TypeScript keeps `T` apart between promises. */
  declare readonly __type?: T;
  constructor(
    /** The job whose return value this stands for. */
    readonly job: Job<unknown>,
    readonly path: PromisePath,
  ) {
    Object.freeze(this);
  }
}

/** Marker keys used in the stored JSON. User objects may not use them. */
export const RV_KEY = '$toil.rv';
export const UNDEFINED_KEY = '$toil.undefined';

/** The stored form of a promise. */
export interface EncodedPromise {
  [RV_KEY]: { job: string; path: Array<string | number> };
}
