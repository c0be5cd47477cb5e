import { UsageError } from '../errors.js';
import { parseSize, type Size } from '../size.js';
import type { Accelerator, ResolvedRequirements, StoredRequirements } from './types.js';

/**
 * What a job may ask for. Sizes are bytes or strings such as `'2Gi'`. Accelerators: a number of
 * GPUs, a string such as `'cuda:2'`, `'gpu'` or `'nvidia-tesla-t4:1'`, or a list of those or of
 * `{ count, kind: 'gpu', model?, brand? }`.
 */
export interface Requirements {
  cores?: number;
  memory?: Size;
  disk?: Size;
  accelerators?: number | string | Array<string | Accelerator>;
  preemptible?: boolean;
}

export interface RequirementDefaults {
  cores: number;
  memory: number;
  disk: number;
  preemptible?: boolean;
}

function parseAccelerator(spec: string | Accelerator): Accelerator {
  if (typeof spec !== 'string') {
    if (!Number.isInteger(spec.count) || spec.count < 1)
      throw new UsageError(`accelerator count must be a whole number ≥ 1, got ${spec.count}`);
    if (spec.kind !== 'gpu') throw new UsageError(`accelerator kind must be 'gpu', got '${String(spec.kind)}'`);
    return { ...spec };
  }
  const m = /^([A-Za-z0-9._-]+?)(?::(\d+))?$/.exec(spec.trim());
  if (!m) throw new UsageError(`not an accelerator: '${spec}' (expected e.g. 'gpu', 'cuda:2' or 'nvidia-tesla-t4:1')`);
  const name = m[1]!;
  const count = m[2] === undefined ? 1 : Number(m[2]);
  if (count < 1) throw new UsageError(`accelerator count must be ≥ 1 in '${spec}'`);
  if (name === 'gpu' || name === 'cuda') return { count, kind: 'gpu', ...(name === 'cuda' ? { brand: 'nvidia' } : {}) };
  const brand = name.split('-')[0];
  return { count, kind: 'gpu', model: name, ...(brand ? { brand } : {}) };
}

/** Normalises what a job asked for into what its record stores. Throws a UsageError naming the field. */
export function normaliseRequirements(req: Requirements): StoredRequirements {
  const out: StoredRequirements = {};
  const known = new Set(['cores', 'memory', 'disk', 'accelerators', 'preemptible']);
  for (const key of Object.keys(req)) {
    if (!known.has(key)) throw new UsageError(`unknown requirement '${key}' (known: ${[...known].join(', ')})`);
  }
  if (req.cores !== undefined) {
    if (typeof req.cores !== 'number' || !Number.isFinite(req.cores) || req.cores <= 0) {
      throw new UsageError(`cores must be a number > 0, got ${String(req.cores)}`);
    }
    out.cores = req.cores;
  }
  if (req.memory !== undefined) out.memory = parseField('memory', req.memory);
  if (req.disk !== undefined) out.disk = parseField('disk', req.disk);
  if (req.accelerators !== undefined) {
    const a = req.accelerators;
    const list = typeof a === 'number' ? (a === 0 ? [] : [{ count: a, kind: 'gpu' as const }]) : Array.isArray(a) ? a : [a];
    out.accelerators = list.map(parseAccelerator);
  }
  if (req.preemptible !== undefined) {
    if (typeof req.preemptible !== 'boolean') throw new UsageError(`preemptible must be true or false`);
    out.preemptible = req.preemptible;
  }
  return out;
}

function parseField(name: string, v: Size): number {
  try {
    return parseSize(v);
  } catch (e) {
    throw new UsageError(`${name}: ${(e as Error).message}`);
  }
}

/** Fills in the workflow's defaults. */
export function resolveRequirements(req: StoredRequirements, defaults: RequirementDefaults): ResolvedRequirements {
  return {
    cores: req.cores ?? defaults.cores,
    memory: req.memory ?? defaults.memory,
    disk: req.disk ?? defaults.disk,
    accelerators: req.accelerators ?? [],
    preemptible: req.preemptible ?? defaults.preemptible ?? false,
  };
}

export function gpuCount(req: { accelerators: Accelerator[] }): number {
  return req.accelerators.reduce((n, a) => n + a.count, 0);
}

/** Whether a job needing `inner` can run inside an allocation of `outer` (used for chaining). */
export function fitsWithin(inner: ResolvedRequirements, outer: ResolvedRequirements): boolean {
  return (
    inner.cores <= outer.cores &&
    inner.memory <= outer.memory &&
    inner.disk <= outer.disk &&
    gpuCount(inner) <= gpuCount(outer) &&
    (outer.preemptible ? inner.preemptible : true)
  );
}
