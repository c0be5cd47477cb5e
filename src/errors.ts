/**
 * One small error hierarchy for toil-ts. Every error has a stable `code` (safe to match on in
 * scripts and tests), a `retryable` flag (transient trouble: a retry may succeed) and optional
 * structured `context` (job id, locator, option name…) that log lines and summaries can show.
 *
 * - {@link UsageError}: bad command line, configuration or workflow module. The CLI exits 2.
 *   {@link TypeCheckError}, a workflow module with type errors, carries the compiler's messages.
 * - {@link GraphError}: an invalid job graph (cycle, follow-on waiting on itself).
 * - {@link SerializationError}: an argument or return value that is not JSON-serialisable.
 * - {@link JobStoreError} and its kinds: missing/existing stores, version conflicts, not found.
 * - {@link LeaseHeldError}: another leader owns the job store.
 * - {@link LeaseLostError}: this leader could not keep its lease and stopped.
 * - {@link ResourceError}: a job asks for more than the batch system can ever give.
 * - {@link TransientError}: an I/O failure worth retrying.
 */
export type ErrorCode =
  | 'USAGE'
  | 'GRAPH'
  | 'SERIALIZATION'
  | 'JOBSTORE'
  | 'JOBSTORE_EXISTS'
  | 'JOBSTORE_MISSING'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'LEASE_HELD'
  | 'LEASE_LOST'
  | 'RESOURCES'
  | 'JOB_FAILED'
  | 'WORKFLOW_FAILED'
  | 'KILLED'
  | 'TRANSIENT'
  | 'INTERNAL';

export type ErrorContext = Record<string, string | number | boolean | undefined>;

export class ToilError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, opts: { retryable?: boolean; context?: ErrorContext; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.context = opts.context ?? {};
  }
}

/** Bad command line, configuration, locator or workflow module: nothing was started. */
export class UsageError extends ToilError {
  constructor(message: string, context?: ErrorContext) {
    super('USAGE', message, { context });
  }
}

/** The workflow module does not type-check: `details` are the compiler's messages, one per line. */
export class TypeCheckError extends UsageError {
  constructor(
    message: string,
    readonly details: readonly string[],
  ) {
    super(message);
  }
}

/** The job graph is invalid (a cycle, a follow-on that would wait on itself, a reused job). */
export class GraphError extends ToilError {
  constructor(message: string, context?: ErrorContext) {
    super('GRAPH', message, { context });
  }
}

/** A job argument or return value cannot be stored as JSON. */
export class SerializationError extends ToilError {
  constructor(message: string, context?: ErrorContext) {
    super('SERIALIZATION', message, { context });
  }
}

export class JobStoreError extends ToilError {
  constructor(
    code: Extract<ErrorCode, 'JOBSTORE' | 'JOBSTORE_EXISTS' | 'JOBSTORE_MISSING' | 'NOT_FOUND' | 'CONFLICT'>,
    message: string,
    opts: { retryable?: boolean; context?: ErrorContext; cause?: unknown } = {},
  ) {
    super(code, message, opts);
  }
}

/** A conditional write lost: somebody else wrote a newer version first. */
export class ConflictError extends JobStoreError {
  constructor(message: string, context?: ErrorContext) {
    super('CONFLICT', message, { context });
  }
}

/** A record, file or shared file does not exist. */
export class NotFoundError extends JobStoreError {
  constructor(message: string, context?: ErrorContext) {
    super('NOT_FOUND', message, { context });
  }
}

/** Another live leader holds the job store's lease. */
export class LeaseHeldError extends ToilError {
  constructor(message: string, context?: ErrorContext) {
    super('LEASE_HELD', message, { context });
  }
}

/**
 * The leader lost its lease (it could not be renewed before it expired, or another leader took
 * it over): it stopped issuing work and exits. `takenOver`: a successor holds the lease now.
 */
export class LeaseLostError extends ToilError {
  constructor(
    message: string,
    readonly info: { takenOver: boolean },
  ) {
    super('LEASE_LOST', message, { context: { takenOver: info.takenOver } });
  }
}

/** A job asks for more than the batch system can ever provide. Never retried. */
export class ResourceError extends ToilError {
  constructor(message: string, context?: ErrorContext) {
    super('RESOURCES', message, { context });
  }
}

/** An I/O failure that may succeed when tried again. */
export class TransientError extends ToilError {
  constructor(message: string, opts: { context?: ErrorContext; cause?: unknown } = {}) {
    super('TRANSIENT', message, { ...opts, retryable: true });
  }
}

export function isToilError(e: unknown): e is ToilError {
  return e instanceof ToilError;
}

/** The message of anything thrown, for logs. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
