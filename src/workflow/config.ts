/**
 * The configuration of a workflow run, validated in one place. Values come in layers — the
 * option declarations' defaults, environment variables, a config file, command-line flags (or
 * the fields programmatic users pass to `Toil.open`) — later layers winning. A wrong value is
 * a UsageError naming the option as the user wrote it: a flag, a file's key or a variable.
 */
import os from 'node:os';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { OPTIONS, optionList, optionName } from './options.js';

type Shape = { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]['schema'] };

function optionShape(): Shape {
  return Object.fromEntries(optionList().map(([k, d]) => [k, d.schema])) as Shape;
}

export const ConfigSchema = z.object({ jobStore: z.string().min(1), ...optionShape() });

export type ToilConfig = z.output<typeof ConfigSchema>;
export type ToilConfigInput = z.input<typeof ConfigSchema>;

/** Option values from one place, and how the user wrote each key there (for messages). */
export interface ConfigLayer {
  values: Record<string, unknown>;
  name(key: string): string;
}

const KNOWN = new Set(Object.keys(ConfigSchema.shape));

/** Values set by environment variables (empty ones count as unset), named by their variable. */
export function environmentLayer(env: NodeJS.ProcessEnv = process.env): ConfigLayer {
  const values: Record<string, unknown> = {};
  const vars: Record<string, string> = {};
  for (const [key, decl] of optionList()) {
    const v = decl.env === undefined ? undefined : env[decl.env];
    if (v === undefined || v === '') continue;
    values[key] = v;
    vars[key] = decl.env!;
  }
  return { values, name: (key) => vars[key] ?? key };
}

/** Values given by option name (flags, or `Toil.open` fields), named by their flag. */
export function optionLayer(values: Record<string, unknown>): ConfigLayer {
  for (const k of Object.keys(values)) if (!KNOWN.has(k)) throw new UsageError(`unknown option '${k}'`);
  return { values, name: optionName };
}

/** Merges layers (later ones win; undefined means unset) and validates the result. */
export function resolveConfig(layers: readonly ConfigLayer[]): ToilConfig {
  const merged: Record<string, unknown> = {};
  const from = new Map<string, ConfigLayer>();
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer.values)) {
      if (v === undefined) continue;
      merged[k] = v;
      from.set(k, layer);
    }
  }
  const parsed = ConfigSchema.safeParse(merged);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = String(issue.path[0] ?? '');
  const name = from.get(key)?.name(key) ?? optionName(key);
  const given = merged[key];
  throw new UsageError(`${name}: ${given === undefined ? 'required' : describeIssue(issue)}${shown(given)}`, { option: name });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value') return `expected one of ${issue.values.join(', ')}`;
  if (issue.code === 'invalid_type') return `expected a ${issue.expected}`;
  if (issue.code === 'invalid_union') return 'expected a single value (a string, number or boolean)';
  return issue.message;
}

function shown(given: unknown): string {
  return given !== undefined && typeof given !== 'object' ? ` (got '${String(given)}')` : '';
}

/** The values the layers set (later ones winning), defaults left out: what the user gave. */
export function givenValues(layers: readonly ConfigLayer[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) for (const [k, v] of Object.entries(layer.values)) if (v !== undefined) out[k] = v;
  return out;
}

/** Options a first run was given, kept in its job store: named as such in messages. */
export function firstRunLayer(values: Record<string, unknown>): ConfigLayer {
  return { values, name: (key) => `${optionName(key)} (as the first run was given it)` };
}

/** Validates a configuration given by option name, over environment defaults. */
export function parseConfig(input: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): ToilConfig {
  return resolveConfig([environmentLayer(env), optionLayer(input)]);
}

export function defaultWorkDir(config: ToilConfig): string {
  return config.workDir ?? os.tmpdir();
}
