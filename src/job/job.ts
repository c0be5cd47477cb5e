import { GraphError, SerializationError, UsageError } from '../errors.js';
import type { JobContext } from './context.js';
import { encodeValue } from './json.js';
import { JobPromise, type PromisePath } from './promise.js';
import { activeRegistry, classNames, type JobClass } from './registry.js';
import { normaliseRequirements, type Requirements } from './requirements.js';
import type { StoredRequirements } from './types.js';

/** Internal state of a job object, kept out of its own (serialised) fields. */
export interface JobInternals {
  name: string;
  kind: 'function' | 'class';
  /** Function jobs: the arguments as given. */
  args?: unknown[];
  children: Job<unknown>[];
  followOns: Job<unknown>[];
  requirements: StoredRequirements;
  checkpoint: boolean;
  /** Set once the job is saved in a job store. */
  id?: string;
}

const internals = new WeakMap<Job<unknown>, JobInternals>();

/** @internal */
export function jobInternals(job: Job<unknown>): JobInternals {
  let st = internals.get(job);
  if (!st) {
    const name = classNames.get(job.constructor);
    if (name === undefined) {
      throw new UsageError(
        `${job.constructor.name} is not registered: call Job.register(${job.constructor.name}, 'a-name') after the class`,
      );
    }
    st = { name, kind: 'class', children: [], followOns: [], requirements: {}, checkpoint: false };
    internals.set(job, st);
  }
  return st;
}

/** @internal Creates the state of a job restored from its record. */
export function setJobInternals(job: Job<unknown>, st: JobInternals): void {
  internals.set(job, st);
}

/** A job's value type, seeing through a returned promise (forwarding). */
export type Unpromise<R> = R extends JobPromise<infer X> ? X : R;

/**
 * A unit of work. Subclass it and implement {@link Job.run}, then register the class:
 *
 * ```ts
 * class Count extends Job<number> {
 *   constructor(public readonly words: string[]) { super(); }
 *   async run(ctx: JobContext) { return this.words.length; }
 * }
 * Job.register(Count, 'count');
 * ```
 *
 * A subclass's own fields are stored as JSON and restored (without calling the constructor)
 * in the worker, so they must be JSON-serialisable. Most workflows use {@link defineJob}.
 */
export abstract class Job<R = unknown> {
  /** Only here so that TypeScript keeps `R` apart between jobs. */
  declare readonly __result?: R;

  /** The job's work. Its return value (JSON, or another job's promise) is this job's value. */
  abstract run(ctx: JobContext): R | JobPromise<R> | Promise<R | JobPromise<R>>;

  /** Registers a job class under a name unique in the workflow, so workers can find it. */
  static register(cls: JobClass, name: string): void {
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) {
      throw new TypeError(`Job.register: name must be 1-100 letters, digits or _.:- characters, got ${JSON.stringify(name)}`);
    }
    activeRegistry().add({ kind: 'class', name, cls });
    classNames.set(cls, name);
  }

  /** Runs `job` after this job returns, in parallel with the other children. Returns `job`. */
  addChild<T extends Job<unknown>>(job: T): T {
    attach(this, job, 'child');
    return job;
  }

  /** Runs `job` after this job, its children and all their successors have finished. Returns `job`. */
  addFollowOn<T extends Job<unknown>>(job: T): T {
    attach(this, job, 'followOn');
    return job;
  }

  /**
   * A promise of this job's return value, or of the value at `path` inside it
   * (`job.rv('counts', 0)` is `value.counts[0]`).
   */
  rv(): JobPromise<Unpromise<R>>;
  rv<T = unknown>(...path: PromisePath): JobPromise<T>;
  rv(...path: PromisePath): JobPromise<unknown> {
    for (const p of path) {
      if (typeof p !== 'string' && !(typeof p === 'number' && Number.isInteger(p) && p >= 0)) {
        throw new TypeError(`rv(): path steps must be strings or whole numbers ≥ 0, got ${String(p)}`);
      }
    }
    return new JobPromise(this, [...path]);
  }

  /** Sets what the job needs: cores, memory, disk, accelerators, preemptible. Returns the job. */
  require(req: Requirements): this {
    const st = jobInternals(this);
    try {
      st.requirements = { ...st.requirements, ...normaliseRequirements(req) };
    } catch (e) {
      throw new UsageError(`job '${st.name}': ${(e as Error).message}`);
    }
    return this;
  }

  /**
   * Makes this job a checkpoint: if a job below it fails for good, its successors are
   * discarded and it runs again, while it has tries left. Returns the job.
   */
  checkpoint(): this {
    jobInternals(this).checkpoint = true;
    return this;
  }

  /** The registered name of this job's definition. */
  get jobName(): string {
    return jobInternals(this).name;
  }
}

function attach(parent: Job<unknown>, job: Job<unknown>, kind: 'child' | 'followOn'): void {
  if (!(job instanceof Job)) throw new UsageError(`add${kind === 'child' ? 'Child' : 'FollowOn'}: expected a job, got ${typeof job}`);
  const p = jobInternals(parent);
  const j = jobInternals(job);
  if (job === parent) throw new GraphError(`job '${p.name}' cannot be its own ${kind === 'child' ? 'child' : 'follow-on'}`);
  if (j.id !== undefined) {
    throw new GraphError(`job '${j.name}' (${j.id}) is already saved in the workflow; attach only new jobs`);
  }
  (kind === 'child' ? p.children : p.followOns).push(job);
}

/** A job made by a {@link defineJob} function. */
export class FunctionJob<R> extends Job<R> {
  constructor(
    private readonly fn: (ctx: JobContext, ...args: unknown[]) => unknown,
    private readonly resolvedArgs: unknown[],
  ) {
    super();
  }
  async run(ctx: JobContext): Promise<R> {
    return (await this.fn(ctx, ...this.resolvedArgs)) as R;
  }
}

/** A value, a promise of it, or (for arrays and plain objects) the same with promises inside. */
export type Promised<T> =
  | T
  | JobPromise<T>
  | (T extends ReadonlyArray<infer E>
      ? Array<Promised<E>>
      : T extends Record<string, unknown>
        ? { [K in keyof T]: Promised<T[K]> }
        : never);

/** Each argument may be given as a value or as a promise of one, also deep inside. */
export type PromisedArgs<A extends unknown[]> = { [K in keyof A]: Promised<A[K]> };

/** The callable that {@link defineJob} returns. */
export interface JobFactory<A extends unknown[], R> {
  (...args: PromisedArgs<A>): Job<Unpromise<Awaited<R>>>;
  readonly jobName: string;
}

/**
 * Defines a job function under a unique name and returns a factory: calling it with arguments
 * (JSON values or promises from `rv()`) creates a job; nothing runs until the leader schedules it.
 *
 * ```ts
 * export const hello = defineJob('hello', async (ctx, name: string) => {
 *   ctx.log(`Hello, ${name}`);
 *   return `Hello, ${name}`;
 * });
 * ```
 */
export function defineJob<A extends unknown[], R>(name: string, fn: (ctx: JobContext, ...args: A) => R): JobFactory<A, R> {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(name)) {
    throw new TypeError(`defineJob: name must be 1-100 letters, digits or _.:- characters, got ${JSON.stringify(name)}`);
  }
  if (typeof fn !== 'function') throw new TypeError(`defineJob('${name}'): expected a function`);
  const call = fn as unknown as (ctx: JobContext, ...args: unknown[]) => unknown;
  activeRegistry().add({ kind: 'function', name, fn: call });
  const factory = (...args: unknown[]) => {
    // Validate now, where the caller can see the mistake, not later in a worker.
    args.forEach((a, i) => encodeValue(a, { what: `argument ${i + 1} of job '${name}'`, idOf: () => 'unsaved' }));
    const job = new FunctionJob<unknown>(call, args);
    internals.set(job, { name, kind: 'function', args, children: [], followOns: [], requirements: {}, checkpoint: false });
    return job;
  };
  Object.defineProperty(factory, 'jobName', { value: name });
  return factory as unknown as JobFactory<A, R>;
}

/** The own fields of a class job, encoded (validated) for storage. */
export function classJobFields(job: Job<unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(job)) {
    if (typeof v === 'function') {
      throw new SerializationError(`field '${k}' of job '${jobInternals(job).name}' is a function; job fields must be JSON-serialisable`);
    }
    out[k] = v;
  }
  return out;
}
