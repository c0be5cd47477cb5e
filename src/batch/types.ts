/**
 * The batch system interface: what runs a batch job (one worker invocation) somewhere.
 * Backends: `single_machine` (local processes) and `kubernetes` (one batch/v1 Job each). The
 * batch system conformance suite (test/batch/conformance.ts) is the executable form of these
 * promises: a new backend passes it.
 */
import type { RequirementDefaults } from '../job/requirements.js';
import type { JobRecord, ResolvedRequirements } from '../job/types.js';

/** The node cache as a workflow uses it: files through it or not (`--disableCaching`), and its cap (`--cacheSize`). */
export interface CachingSettings {
  enabled: boolean;
  cacheSize?: number | undefined;
}

/** How to start a worker (`toil worker`, or a warm worker process) on one job. */
export interface WorkerArgs {
  locator: string;
  jobId: string;
  /** Known workflow facts (saves reading workflow.json); read from the store when absent. */
  workflow?: {
    workflowId: string;
    bundleHash: string;
    defaults: RequirementDefaults & { preemptible: boolean };
    caching?: CachingSettings;
    /** Measure each job and send the figures to the leader (`--stats`, `--trace`). */
    measure?: boolean;
  };
  /** Resources given to this batch job; default: the job's own requirements. */
  allocated?: ResolvedRequirements;
  workDir?: string;
  /** Pass job output through to this process's stdout/stderr too. */
  echo?: boolean;
  /** Whether to chain into a ready successor (default true). */
  chain?: boolean;
  /** Run as the executor of this name (executors/executorMain.ts) instead of one job; `jobId` only names it. */
  executor?: string;
  /**
   * The job's record and version as its leader had them from the worker that created it (a
   * first issue only): the worker need not read it. A stale copy cannot commit (the commit is
   * conditional on the version). Warm workers use it; a pod's command line does not carry it.
   */
  record?: { value: JobRecord; version: string };
}

export interface BatchJobRequest {
  /** The job the worker starts with. */
  jobId: string;
  jobName: string;
  requirements: ResolvedRequirements;
  worker: WorkerArgs;
}

/**
 * How a batch job ended.
 * - `succeeded`/`failed`: the worker exited 0 / non-zero.
 * - `memory`: killed for using too much memory.
 * - `disk`: evicted for writing more local storage than the job's disk requirement.
 * - `preempted`: the machine was taken away (spot reclaim, eviction, node lost): not the job's fault.
 * - `killed`: the leader killed it.
 * - `unschedulable`, `image`, `deadline`: it never ran, or ran out of time.
 * - `refused`: the cluster would not create its pod (Pod Security, a quota, a LimitRange).
 */
export type BatchOutcome =
  'succeeded' | 'failed' | 'memory' | 'disk' | 'preempted' | 'killed' | 'unschedulable' | 'image' | 'deadline' | 'refused';

export interface BatchJobEnd {
  batchJobId: number;
  jobId: string;
  outcome: BatchOutcome;
  exitCode: number | null;
  /** Words for people: why it ended. */
  message?: string;
  /** Whether this attempt uses up one of the job's tries (false for preemption). */
  countsAsAttempt: boolean;
  /** Trying again cannot help (e.g. the image cannot be pulled): the job fails for good. */
  final?: boolean;
  /** The last lines the worker process printed, when the job store has no log for it. */
  outputTail?: string;
  /**
   * The worker process died before it could save this attempt's log: `outputTail` is the
   * attempt's output (the job store holds nothing newer), and the leader keeps it as the log.
   */
  outputIsLog?: boolean;
  /** Where the attempt ran and, on Kubernetes, its pod's phases: for statistics, never for the verdict. */
  place?: AttemptPlace;
  /** What a warm worker committed (succeeded ends only): the leader need not read it back. */
  records?: WorkerRecords;
}

/**
 * What a worker committed: the records of the jobs it finished (in the order it ran them) and of
 * the jobs they created, as written.
 */
export interface WorkerRecords {
  done: JobRecord[];
  created: JobRecord[];
  /** The versions the created records were written with, by job id. */
  versions: Record<string, string>;
}

/** Where an attempt ran, and when its pod reached each phase (ms since the epoch; podAccount.ts). */
export interface AttemptPlace {
  /** The node (Kubernetes) or host (single_machine). */
  node?: string;
  pod?: string;
  /** The worker process (single_machine). */
  pid?: number;
  phases?: { created?: number; scheduled?: number; initialized?: number; started?: number; finished?: number };
}

export interface ShutdownOptions {
  leaveJobs?: boolean;
}

export interface BatchSystem {
  readonly name: string;
  /** Throws a ResourceError if a job with these requirements can never run here. */
  checkFits(req: ResolvedRequirements, what: string): void;
  /** Queues a batch job; returns its batch job id. */
  issue(req: BatchJobRequest): Promise<number>;
  /** Kills batch jobs; each still reports an end (outcome `killed`). */
  kill(batchJobIds: number[]): Promise<void>;
  /**
   * The next batch job that ended, waiting at most `timeoutMs`; undefined when none ended in time
   * or `signal` was aborted. A caller that stops waiting early aborts the signal: an end is never
   * handed to a wait that was given up (see endQueue.ts).
   */
  nextEnd(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined>;
  /** Batch jobs issued and not yet reported ended. */
  issuedCount(): number;
  /**
   * Whether this batch job is issued and its end not yet taken by `nextEnd` (running, queued, or
   * its end waiting to be taken). The leader's reconciliation: a batch job the leader still
   * counts as issued and the batch system does not know had its end lost.
   */
  knows(batchJobId: number): boolean;
  /**
   * Reads the truth again where the batch system keeps a picture of it (Kubernetes: the
   * workflow's Jobs, as a controller resyncs); what it finds ended is reported through `nextEnd`
   * as usual. Failures are the batch system's to log; it resolves either way.
   */
  resync(): Promise<void>;
  /** What the issued batch jobs that are not running wait for, in a few words (undefined: nothing to say). */
  waitingFor(): string | undefined;
  /** Batch jobs running right now (the rest of the issued ones are queued). */
  runningCount(): number;
  /**
   * Stops everything and releases resources: running batch jobs are ended, the quickest way the
   * backend has (for Kubernetes, one bulk delete), before anything slower. With `leaveJobs`, a
   * backend whose jobs outlive the leader (Kubernetes) leaves them alone: a successor that took
   * the workflow over owns them now. Calling it again does nothing.
   */
  shutdown(opts?: ShutdownOptions): Promise<void>;
}
