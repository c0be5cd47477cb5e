/**
 * Encoding of job arguments, fields and return values to JSON, and back. Promises become
 * `{"$toil.rv": {job, path}}` markers; `undefined` in an array or argument list becomes
 * `{"$toil.undefined": true}` (object properties that are `undefined` are dropped, as JSON does).
 * Anything else that JSON cannot carry faithfully is refused with a message naming where it is.
 */
import { SerializationError } from '../errors.js';
import { JobPromise, RV_KEY, UNDEFINED_KEY, type PromisePath } from './promise.js';
import type { Json } from './types.js';

export interface EncodeOptions {
  /** Words naming the value for error messages, e.g. "argument 2 of job 'hello'". */
  what: string;
  /** Maps a promised job to its id; return undefined when it has none (yet). */
  idOf: (job: JobPromise['job']) => string | undefined;
  /** Collects the ids of promised jobs. */
  deps?: Set<string>;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (typeof v === 'bigint') return `a BigInt (${v}n)`;
  if (typeof v === 'symbol') return `a symbol`;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object') {
    const ctor = Object.getPrototypeOf(v)?.constructor?.name;
    return ctor ? `a ${ctor}` : 'an object';
  }
  return typeof v;
}

function pathText(path: Array<string | number>): string {
  if (path.length === 0) return 'the value itself';
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : /^[A-Za-z_$][\w$]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

function hint(v: unknown): string {
  if (v instanceof Date) return ' (pass date.toISOString() instead)';
  if (v instanceof Map) return ' (pass Object.fromEntries(map) instead)';
  if (v instanceof Set) return ' (pass [...set] instead)';
  if (typeof v === 'bigint') return ' (pass it as a string)';
  if (typeof v === 'number') return ' (JSON has no NaN or Infinity)';
  if (typeof v === 'object' && v !== null && typeof (v as { run?: unknown }).run === 'function') {
    return " (to use a job's result, pass job.rv())";
  }
  return '';
}

/** Encodes a value to storable JSON, refusing what JSON cannot carry. */
export function encodeValue(value: unknown, opts: EncodeOptions): Json {
  const seen = new Set<object>();
  const walk = (v: unknown, path: Array<string | number>, inArray: boolean): Json | undefined => {
    const fail = (): never => {
      throw new SerializationError(`${opts.what} is not JSON-serialisable: ${pathText(path)} is ${describe(v)}${hint(v)}`, {
        path: pathText(path),
      });
    };
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isFinite(v) ? v : fail();
    if (v === undefined) return inArray ? { [UNDEFINED_KEY]: true } : undefined;
    if (v instanceof JobPromise) {
      const id = opts.idOf(v.job);
      if (id === undefined) {
        throw new SerializationError(
          `${opts.what}: ${pathText(path)} is a promise of a job that is not part of the workflow (attach it with addChild/addFollowOn first)`,
        );
      }
      opts.deps?.add(id);
      return { [RV_KEY]: { job: id, path: [...v.path] } };
    }
    if (typeof v !== 'object') return fail();
    if (seen.has(v)) {
      throw new SerializationError(`${opts.what} is not JSON-serialisable: ${pathText(path)} refers back to itself (a cycle)`);
    }
    seen.add(v);
    try {
      if (Array.isArray(v)) {
        const out: Json[] = [];
        for (let i = 0; i < v.length; i++) out.push(walk(v[i], [...path, i], true) as Json);
        return out;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return fail();
      const out: { [k: string]: Json } = {};
      for (const [k, child] of Object.entries(v)) {
        if (k === RV_KEY || k === UNDEFINED_KEY) {
          throw new SerializationError(`${opts.what}: ${pathText([...path, k])} uses a key reserved by toil-ts`);
        }
        const enc = walk(child, [...path, k], false);
        if (enc !== undefined) out[k] = enc;
      }
      return out;
    } finally {
      seen.delete(v);
    }
  };
  const enc = walk(value, [], false);
  return enc === undefined ? { [UNDEFINED_KEY]: true } : enc;
}

/** The promise markers in an encoded value. */
export function findPromises(value: Json, out: Array<{ job: string; path: PromisePath }> = []): Array<{ job: string; path: PromisePath }> {
  if (value === null || typeof value !== 'object') return out;
  if (Array.isArray(value)) {
    for (const v of value) findPromises(v, out);
    return out;
  }
  const marker = value[RV_KEY];
  if (marker !== undefined && typeof marker === 'object' && marker !== null && !Array.isArray(marker)) {
    const job = marker['job'];
    const path = marker['path'];
    if (typeof job === 'string' && Array.isArray(path)) out.push({ job, path: path as Array<string | number> });
    return out;
  }
  for (const v of Object.values(value)) findPromises(v, out);
  return out;
}

/**
 * Decodes stored JSON, replacing each promise marker with `resolve(job, path)`. The resolver
 * is async so it can read other jobs' records.
 */
export async function decodeValue(value: Json, resolve: (job: string, path: PromisePath) => Promise<unknown>): Promise<unknown> {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return Promise.all(value.map((v) => decodeValue(v, resolve)));
  if (value[UNDEFINED_KEY] === true && Object.keys(value).length === 1) return undefined;
  const marker = value[RV_KEY];
  if (marker !== undefined && typeof marker === 'object' && marker !== null && !Array.isArray(marker)) {
    return resolve(String(marker['job']), (marker['path'] ?? []) as PromisePath);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = await decodeValue(v, resolve);
  return out;
}

/** Follows `path` into a value; throws a SerializationError naming the missing step. */
export function followPath(value: unknown, path: PromisePath, what: string): unknown {
  let cur = value;
  for (let i = 0; i < path.length; i++) {
    const step = path[i]!;
    if (cur === null || typeof cur !== 'object' || !(step in (cur as object))) {
      throw new SerializationError(`${what}: the value has no ${pathText(path.slice(0, i + 1) as Array<string | number>)}`);
    }
    cur = (cur as Record<string | number, unknown>)[step];
  }
  return cur;
}
