/**
 * What a restart keeps from the first run: the options it was given (defaults left out, so a
 * restart fills only the gaps; options given at the restart win, and the log says which) and
 * its workflow arguments (the root job was built with them: new ones are refused).
 */
import { UsageError } from '../errors.js';
import type { JobStore } from '../jobstore/types.js';
import { readWorkflowInfo } from '../jobstore/workflowInfo.js';
import { environmentLayer } from './config.js';
import { optionName } from './options.js';

export type OptionValue = string | number | boolean;

/** A restart cannot change the workflow's arguments: its root job was built with the first ones. */
export function checkRestartArgs(first: string[] | undefined, now: readonly string[] | undefined): void {
  if (now === undefined || now.length === 0) return;
  if (first !== undefined && first.length === now.length && first.every((a, i) => a === now[i])) return;
  const was = first === undefined ? 'not recorded' : first.length === 0 ? 'none' : first.map((a) => JSON.stringify(a)).join(' ');
  throw new UsageError(
    `--restart resumes the workflow with the arguments of its first run (${was}); it cannot take new ones: leave out the arguments after --, or start a new workflow in a new job store`,
  );
}

export function definedOptions(rest: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
}

/** The options a run keeps in its store for a restart: what it was given, but where and whether to restart. */
export function storableOptions(given: Record<string, unknown>): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const [k, v] of Object.entries({ ...environmentLayer().values, ...given })) {
    if (k === 'jobStore' || k === 'restart') continue;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** The options the store's first run was given, if the store holds a workflow that kept them. */
export async function firstRunOptions(store: JobStore): Promise<Record<string, OptionValue> | undefined> {
  if (!(await store.exists())) return undefined;
  const got = await readWorkflowInfo(store).catch(() => undefined);
  return got?.info.options;
}

/** The log line of a restart: the first run's options, and those given now that replace them. */
export function restartOptionsLine(first: Record<string, OptionValue>, given: Record<string, unknown>): string {
  const list = (entries: Array<[string, unknown]>) => entries.map(([k, v]) => `${optionName(k)} ${String(v)}`).join(', ');
  const kept = Object.entries(first);
  const changed = Object.entries(storableOptions(given)).filter(([k, v]) => String(first[k]) !== String(v));
  const now = changed.map(([k, v]): [string, unknown] => [k, k in first ? `${String(v)} (was ${String(first[k])})` : v]);
  return (
    `restarting with the options of the first run: ${kept.length > 0 ? list(kept) : 'none besides the defaults'}` +
    (now.length > 0 ? `; overridden at this restart: ${list(now)}` : '')
  );
}
