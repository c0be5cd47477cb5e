/**
 * The options of a workflow run, each declared once: Toil's name (the key below, which is also
 * the flag `--name` and the config-file key), its zod type, default, help text, environment
 * variable and how it is written on the command line. The configuration schema, the `toil run`
 * flags and help, environment defaults and config files are all derived from this table.
 */
import { z } from 'zod';
import { DEFAULT_LEASE_SECONDS } from '../leader/lease.js';
import { LOG_LEVELS } from '../log.js';
import { parseSize } from '../size.js';

/** What the table says about an option besides its type. */
export interface OptionMeta {
  help: string;
  /** Placeholder of the flag's value (`--retryCount <n>`); absent for a switch (`--restart`). */
  value?: string;
  /** The value may be left out on the command line (`--disableCaching [bool]`), meaning true. */
  optionalValue?: boolean;
  /** Environment variable that supplies a default. */
  env?: string;
  /** The default as help shows it, when there is no plain default value ("all CPUs"). */
  defaultHelp?: string;
  /** Flags that set this option to one value (`--logDebug`); when several are given, the last listed wins. */
  shortcuts?: ReadonlyArray<{ flag: string; value: string; help: string }>;
  /** Set by its environment variable only: no flag and no config-file key. */
  envOnly?: boolean;
  /** Help of a `--no-<name>` flag that sets the option to false. */
  negation?: string;
}

export interface OptionDecl<S extends z.ZodType = z.ZodType> extends OptionMeta {
  schema: S;
  /** The default, as a user would write it (`'2Gi'`); absent when the option is optional. */
  default?: unknown;
  /** Allowed values, for help (taken from an enum type). */
  choices?: readonly string[];
}

/** Declares an option with a default: the default goes through the same validation as a given value. */
export function option<T extends z.ZodType>(type: T, meta: OptionMeta & { default: z.input<T> }): OptionDecl<z.ZodPrefault<T>>;
/** Declares an option without a default: unset stays undefined. */
export function option<T extends z.ZodType>(type: T, meta: OptionMeta): OptionDecl<z.ZodOptional<T>>;
export function option(type: z.ZodType, meta: OptionMeta & { default?: unknown }): OptionDecl {
  const choices = type instanceof z.ZodEnum ? (type.options as string[]) : undefined;
  const schema = meta.default === undefined ? type.optional() : type.prefault(meta.default);
  return { ...meta, schema, ...(choices ? { choices } : {}) };
}

// Value types. Strings are accepted everywhere, since flags and environment variables are text.

const size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'not a size (expected e.g. 512M, 2Gi, 3G or a number of bytes)' });
    return z.NEVER;
  }
});

/** true or false, as Toil takes them (any case); nothing else, so that a typo is not taken for either. */
const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const t = v.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  ctx.addIssue({ code: 'custom', message: 'expected true or false' });
  return z.NEVER;
});

const numberOf = (what: string, test: (n: number) => boolean) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const n = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
    if (!test(n)) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}` });
      return z.NEVER;
    }
    return n;
  });
const num = numberOf('a number', Number.isFinite);
const int = numberOf('a whole number', Number.isInteger);
const positive = num.pipe(z.number().positive());
const text = z.string().min(1);

const logLevel = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(LOG_LEVELS as [string, ...string[]]));

/** Every option of `toil run`, in help order. */
export const OPTIONS = {
  batchSystem: option(z.enum(['single_machine', 'kubernetes']), { default: 'single_machine', value: 'name', help: 'where batch jobs run' }),
  restart: option(bool, { default: false, help: 'resume the workflow in an existing job store (finished jobs are not run again)' }),
  retryCount: option(int.pipe(z.number().min(0).max(1000)), { default: 1, value: 'n', help: 'times to retry a failed job' }),
  retryBackoff: option(num.pipe(z.number().min(0).max(3600)), {
    default: 1,
    value: 'seconds',
    help: 'wait before the first retry, doubling for each further retry',
  }),
  clean: option(z.enum(['always', 'onError', 'never', 'onSuccess']), {
    default: 'onSuccess',
    value: 'when',
    help: 'when to delete the job store at the end',
  }),
  logLevel: option(logLevel, {
    default: 'info',
    value: 'level',
    help: `${LOG_LEVELS.slice(0, -1).join(', ')} or ${LOG_LEVELS.at(-1)}`,
    shortcuts: [
      { flag: 'logCritical', value: 'critical', help: 'log only critical messages' },
      { flag: 'logError', value: 'error', help: 'log errors and worse' },
      { flag: 'logWarning', value: 'warning', help: 'log warnings and worse' },
      { flag: 'logInfo', value: 'info', help: 'log information and worse (the default)' },
      { flag: 'logDebug', value: 'debug', help: 'log everything' },
    ],
  }),
  disableCaching: option(bool, {
    default: false,
    value: 'bool',
    optionalValue: true,
    help: "do not use the node-wide file cache (true|false): files are then copied from the job store for every read, and jobs' disk is not reserved on the node",
  }),
  cacheSize: option(size, {
    value: 'size',
    help: 'most disk the node-wide file cache may use for cached files, e.g. 50Gi',
    defaultHelp: 'no cap: the free disk, shared with running jobs',
  }),
  maxCores: option(positive, { value: 'n', help: 'most cores in use at once', defaultHelp: 'single_machine: all CPUs' }),
  maxMemory: option(size, { value: 'size', help: 'most memory in use at once, e.g. 16Gi', defaultHelp: 'all memory' }),
  maxDisk: option(size, { value: 'size', help: 'most disk in use at once', defaultHelp: 'free space of --workDir' }),
  maxJobs: option(int.pipe(z.number().positive()), { value: 'n', help: 'most batch jobs issued at once' }),
  defaultCores: option(positive, { default: 1, value: 'n', help: 'cores for jobs that do not say' }),
  defaultMemory: option(size, { default: '2Gi', value: 'size', help: 'memory for jobs that do not say' }),
  defaultDisk: option(size, { default: '2Gi', value: 'size', help: 'disk for jobs that do not say' }),
  defaultPreemptible: option(bool, {
    default: false,
    value: 'bool',
    optionalValue: true,
    help: 'whether jobs that do not say may run on preemptible nodes',
  }),
  typecheck: option(bool, {
    default: true,
    value: 'bool',
    optionalValue: true,
    help: 'type-check a TypeScript workflow (strict) before running it; type errors exit 2',
    negation: 'do not type-check the workflow (faster; esbuild only strips the types)',
  }),
  workDir: option(text, {
    value: 'dir',
    env: 'TOIL_WORKDIR',
    help: "where workers put jobs' temporary files (an existing directory)",
    defaultHelp: 'the system temp dir',
  }),
  writeLogs: option(text, { value: 'dir', help: "copy every job's log to this directory" }),
  stats: option(bool, {
    default: false,
    value: 'bool',
    optionalValue: true,
    help: "measure every attempt (time, CPU, memory, I/O, where it ran) and keep the figures in the job store, and at the end in <jobStore>.stats.json beside a directory store (./<name>.stats.json for aws:), which --clean does not delete; read them with 'toil stats' and 'toil report'",
  }),
  trace: option(text, {
    value: 'file',
    help: 'write one tab-separated line per attempt to this file as it ends, under a header (appended to if it exists); measures every attempt as --stats does',
  }),
  statusInterval: option(positive, { default: 10, value: 'seconds', help: 'seconds between status lines when stderr is not a terminal' }),
  reconcileInterval: option(num.pipe(z.number().min(1).max(86_400)), {
    default: 60,
    value: 'seconds',
    help: 'how often running jobs are checked against the batch system and the job store, so that an end that went missing is found',
  }),
  sseKey: option(text, { value: 'file', help: 'file with a 32-byte key for server-side encryption of the AWS job store' }),
  awsMetadata: option(z.enum(['s3', 'simpledb']), {
    value: 'where',
    env: 'TOIL_AWS_METADATA',
    defaultHelp: 's3',
    help: 'where a new AWS job store keeps job records and its own metadata: s3, or simpledb (domains <name>--jobs and <name>--files; file contents stay in S3). An existing store keeps its choice',
  }),
  kubernetesHostPath: option(text, {
    value: 'path',
    env: 'TOIL_KUBERNETES_HOST_PATH',
    help: 'host path for the node-wide cache, mounted at /var/lib/toil',
  }),
  kubernetesOwner: option(text, { value: 'name', env: 'TOIL_KUBERNETES_OWNER', help: 'owner name put on worker Jobs' }),
  kubernetesServiceAccount: option(text, {
    value: 'name',
    env: 'TOIL_KUBERNETES_SERVICE_ACCOUNT',
    help: 'service account for worker pods',
  }),
  kubernetesPodTimeout: option(positive, {
    default: 600,
    value: 'seconds',
    help: "how long a worker pod may stay unschedulable, wait for its container to be created (a secret that cannot be mounted, a missing config key) or keep failing to pull its image, before its job fails with the scheduler's or the kubelet's reason",
  }),
  kubernetesMaxDisruptions: option(int.pipe(z.number().min(0)), {
    default: 5,
    value: 'n',
    help: "how many times a job's worker pod may be taken away (spot reclaim, node loss, preemption, node-pressure eviction) without using up a try; one more fails the job",
  }),
  kubernetesExecutors: option(bool, {
    value: 'bool',
    optionalValue: true,
    env: 'TOIL_KUBERNETES_EXECUTORS',
    defaultHelp: 'false: a pod per job',
    help: 'run jobs on executor pods, each running job after job (several at once when they fit), instead of a pod per job; jobs with GPUs, or too large for an executor, still get a pod of their own',
    negation: 'a pod per job',
  }),
  kubernetesExecutorSlots: option(int.pipe(z.number().min(1).max(64)), {
    default: 4,
    value: 'n',
    help: "most jobs at once in one executor (fewer when fewer of the jobs' shape fit in --kubernetesExecutorCores and --kubernetesExecutorMemory)",
  }),
  kubernetesExecutorCores: option(positive, {
    default: 4,
    value: 'n',
    help: 'most cores one executor pod asks for (the sum of its slots)',
  }),
  kubernetesExecutorMemory: option(size, {
    default: '16Gi',
    value: 'size',
    help: 'most memory one executor pod asks for (its slots, and 256 MiB for itself)',
  }),
  kubernetesExecutorMax: option(int.pipe(z.number().min(1)), { default: 32, value: 'n', help: 'most executor pods at once' }),
  kubernetesExecutorIdle: option(positive, {
    default: 60,
    value: 'seconds',
    help: 'an executor with no job this long is told to stop; the pool shrinks to none when nothing waits, and grows again with the queue',
  }),
  kubernetesRestartWait: option(positive, {
    default: 120,
    value: 'seconds',
    help: "how long a --restart waits for an earlier leader's worker pods to go (they are deleted first) before it exits naming those still there; nothing is started beside them",
  }),
  kubernetesQps: option(positive, { default: 20, value: 'n', help: 'Kubernetes API requests per second, sustained' }),
  kubernetesBurst: option(int.pipe(z.number().min(1)), { default: 40, value: 'n', help: 'Kubernetes API requests allowed in a burst' }),
  leaseSeconds: option(num.pipe(z.number().min(2)), {
    default: DEFAULT_LEASE_SECONDS,
    value: 'seconds',
    help: "the leader's lease period: it renews its lease on the job store every sixth of it and stops if it cannot for nearly a whole period; a --restart (or toil clean) that finds a lease whose holder it cannot see ended waits one period of the holder's for it to be renewed before taking it over",
  }),
  awsSecretName: option(text, {
    envOnly: true,
    env: 'TOIL_AWS_SECRET_NAME',
    help: 'secret with the AWS credentials file, mounted in worker pods at /root/.aws',
  }),
  applianceImage: option(text, { envOnly: true, env: 'TOIL_APPLIANCE_SELF', help: 'worker image for --batchSystem kubernetes' }),
};

export type OptionKey = keyof typeof OPTIONS;

/** The declarations as a list, in help order. */
export function optionList(): Array<[OptionKey, OptionDecl]> {
  return Object.entries(OPTIONS) as Array<[OptionKey, OptionDecl]>;
}

/** How users write an option outside config files: its flag, or its variable when it has no flag. */
export function optionName(key: string): string {
  const decl = (OPTIONS as Record<string, OptionDecl | undefined>)[key];
  if (!decl) return key;
  return decl.envOnly && decl.env ? decl.env : `--${key}`;
}
