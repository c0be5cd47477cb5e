/**
 * The configuration of a workflow run, validated in one place. The CLI maps Toil's option
 * names onto it; programmatic users pass the same fields to `Toil.open`. Environment variables
 * (TOIL_WORKDIR, TOIL_KUBERNETES_*, TOIL_AWS_SECRET_NAME, TOIL_APPLIANCE_SELF) supply defaults.
 */
import os from 'node:os';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { LOG_LEVELS } from '../log.js';
import { parseSize } from '../size.js';

const size = (what: string) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    try {
      return parseSize(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `${what}: ${(e as Error).message}` });
      return z.NEVER;
    }
  });

const bool = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const t = v.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(t)) return true;
  if (['false', 'no', '0', 'off'].includes(t)) return false;
  ctx.addIssue({ code: 'custom', message: `expected true or false` });
  return z.NEVER;
});

const num = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : v.trim() === '' ? NaN : Number(v);
  if (!Number.isFinite(n)) {
    ctx.addIssue({ code: 'custom', message: 'expected a number' });
    return z.NEVER;
  }
  return n;
});
const int = num.pipe(z.number().int({ message: 'expected a whole number' }));

/** Option names as users write them (Toil's), for error messages. */
export const OPTION_NAMES: Record<string, string> = {
  jobStore: 'jobStore',
  batchSystem: '--batchSystem',
  restart: '--restart',
  retryCount: '--retryCount',
  retryBackoff: '--retryBackoff',
  clean: '--clean',
  logLevel: '--logLevel',
  disableCaching: '--disableCaching',
  maxCores: '--maxCores',
  maxMemory: '--maxMemory',
  maxDisk: '--maxDisk',
  maxJobs: '--maxJobs',
  defaultCores: '--defaultCores',
  defaultMemory: '--defaultMemory',
  defaultDisk: '--defaultDisk',
  defaultPreemptible: '--defaultPreemptible',
  workDir: '--workDir',
  writeLogs: '--writeLogs',
  statusInterval: '--statusInterval',
  sseKey: '--sseKey',
  kubernetesHostPath: '--kubernetesHostPath',
  kubernetesOwner: '--kubernetesOwner',
  kubernetesServiceAccount: '--kubernetesServiceAccount',
  kubernetesPodTimeout: '--kubernetesPodTimeout',
  kubernetesQps: '--kubernetesQps',
  kubernetesBurst: '--kubernetesBurst',
  awsSecretName: 'TOIL_AWS_SECRET_NAME',
  applianceImage: 'TOIL_APPLIANCE_SELF',
  leaseSeconds: '--leaseSeconds',
};

export const ConfigSchema = z.object({
  jobStore: z.string().min(1),
  batchSystem: z.enum(['single_machine', 'kubernetes']).default('single_machine'),
  restart: bool.default(false),
  retryCount: int.pipe(z.number().min(0).max(1000)).default(1),
  /** Seconds before the first retry; doubles with each further retry. */
  retryBackoff: num.pipe(z.number().min(0).max(3600)).default(1),
  clean: z.enum(['always', 'onError', 'never', 'onSuccess']).default('onSuccess'),
  logLevel: z
    .string()
    .transform((v) => v.toLowerCase())
    .pipe(z.enum(LOG_LEVELS as [string, ...string[]]))
    .default('info'),
  disableCaching: bool.default(false),
  maxCores: num.pipe(z.number().positive()).optional(),
  maxMemory: size('maxMemory').optional(),
  maxDisk: size('maxDisk').optional(),
  maxJobs: int.pipe(z.number().positive()).optional(),
  defaultCores: num.pipe(z.number().positive()).default(1),
  defaultMemory: size('defaultMemory').default(2 * 1024 ** 3),
  defaultDisk: size('defaultDisk').default(2 * 1024 ** 3),
  defaultPreemptible: bool.default(false),
  workDir: z.string().min(1).optional(),
  writeLogs: z.string().min(1).optional(),
  /** Seconds between status lines when not on a terminal. */
  statusInterval: num.pipe(z.number().positive()).default(10),
  sseKey: z.string().min(1).optional(),
  kubernetesHostPath: z.string().min(1).optional(),
  kubernetesOwner: z.string().min(1).optional(),
  kubernetesServiceAccount: z.string().min(1).optional(),
  kubernetesPodTimeout: num.pipe(z.number().positive()).default(600),
  /** Client-side rate limit on Kubernetes API requests: sustained requests per second, and burst. */
  kubernetesQps: num.pipe(z.number().positive()).default(20),
  kubernetesBurst: int.pipe(z.number().min(1)).default(40),
  awsSecretName: z.string().min(1).optional(),
  applianceImage: z.string().min(1).optional(),
  /** Seconds a leader's lease on the job store lasts without renewal. */
  leaseSeconds: num.pipe(z.number().min(2)).default(30),
});

export type ToilConfig = z.output<typeof ConfigSchema>;
export type ToilConfigInput = z.input<typeof ConfigSchema>;

/** Defaults taken from the environment, as the Kubernetes documentation describes. */
export function environmentDefaults(env: NodeJS.ProcessEnv = process.env): Partial<ToilConfigInput> {
  const out: Partial<ToilConfigInput> = {};
  const set = <K extends keyof ToilConfigInput>(k: K, v: string | undefined) => {
    if (v !== undefined && v !== '') out[k] = v as ToilConfigInput[K];
  };
  set('workDir', env['TOIL_WORKDIR']);
  set('kubernetesHostPath', env['TOIL_KUBERNETES_HOST_PATH']);
  set('kubernetesOwner', env['TOIL_KUBERNETES_OWNER']);
  set('kubernetesServiceAccount', env['TOIL_KUBERNETES_SERVICE_ACCOUNT']);
  set('awsSecretName', env['TOIL_AWS_SECRET_NAME']);
  set('applianceImage', env['TOIL_APPLIANCE_SELF']);
  return out;
}

/** Validates a configuration; a wrong value is a UsageError naming the option. */
export function parseConfig(input: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ToilConfig {
  const merged: Record<string, unknown> = { ...environmentDefaults(env) };
  for (const [k, v] of Object.entries(input)) if (v !== undefined) merged[k] = v;
  const known = new Set(Object.keys(ConfigSchema.shape));
  for (const k of Object.keys(merged)) {
    if (!known.has(k)) throw new UsageError(`unknown option '${k}'`);
  }
  const parsed = ConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const name = OPTION_NAMES[key] ?? key;
    const given = merged[key];
    let msg = issue.message;
    if (issue.code === 'invalid_value' && 'values' in issue) msg = `expected one of ${(issue.values as unknown[]).join(', ')}`;
    throw new UsageError(`${name}: ${msg}${given !== undefined && typeof given !== 'object' ? ` (got '${String(given)}')` : ''}`, { option: name });
  }
  return parsed.data;
}

export function defaultWorkDir(config: ToilConfig): string {
  return config.workDir ?? os.tmpdir();
}
