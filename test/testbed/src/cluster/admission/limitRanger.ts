/**
 * The LimitRanger admission plugin, for pods, against every LimitRange of their namespace:
 *
 * - mutating (before the ServiceAccount plugin, long before quota): each container and init
 *   container without a limit or request for a resource gets the `Container` item's `default` /
 *   `defaultRequest` (a LimitRange item is itself defaulted when stored: `default` from `max`,
 *   `defaultRequest` from `default`, then from `min`), and the pod is annotated
 *   `kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory request for container main; …`;
 * - validating: `min`, `max` and `maxLimitRequestRatio` per container (`Container`) and summed over
 *   the containers (`Pod`), refused with the real messages (`pods "x" is forbidden: maximum cpu
 *   usage per Container is 1, but limit is 2`; several as `[…, …]`).
 */
import { forbidden } from '../errors.js';
import { amount, compareAmounts, formatAmount, type Amount } from '../quantity.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj, Store } from '../store.js';

const ANNOTATION = 'kubernetes.io/limit-ranger';

const items = (lr: Obj, type: string): Obj[] => ((lr.spec?.limits ?? []) as Obj[]).filter((l) => l.type === type);

/** Fills in missing container limits and requests from the namespace's LimitRanges. */
export function applyLimitRangeDefaults(store: Store, inf: ResourceInfo, pod: Obj): void {
  if (inf.kind !== 'Pod') return;
  const notes: string[] = [];
  for (const lr of store.list('limitranges', pod.metadata.namespace)) {
    const limits: Record<string, unknown> = {};
    const requests: Record<string, unknown> = {};
    for (const it of items(lr, 'Container')) {
      Object.assign(requests, it.defaultRequest ?? {});
      Object.assign(limits, it.default ?? {});
    }
    const each = (cs: Obj[] | undefined, what: string): void => {
      for (const c of cs ?? []) notes.push(...mergeDefaults(c, { limits, requests }, what));
    };
    each(pod.spec?.containers, 'container');
    each(pod.spec?.initContainers, 'init container');
  }
  if (notes.length)
    pod.metadata.annotations = { ...(pod.metadata.annotations ?? {}), [ANNOTATION]: `LimitRanger plugin set: ${notes.join('; ')}` };
}

function mergeDefaults(c: Obj, defaults: { limits: Record<string, unknown>; requests: Record<string, unknown> }, what: string): string[] {
  c.resources ??= {};
  const set = (kind: 'limits' | 'requests'): string[] => {
    const have = (c.resources[kind] ??= {}) as Record<string, unknown>;
    const added = Object.keys(defaults[kind]).filter((k) => have[k] === undefined);
    for (const k of added) have[k] = defaults[kind][k];
    return added.sort();
  };
  const limits = set('limits');
  const requests = set('requests');
  return [
    requests.length ? `${requests.join(', ')} request for ${what} ${String(c.name)}` : '',
    limits.length ? `${limits.join(', ')} limit for ${what} ${String(c.name)}` : '',
  ].filter(Boolean);
}

type List = Record<string, unknown>;

function minConstraint(type: string, name: string, enforced: unknown, r: { requests: List; limits: List }): string | undefined {
  const min = amount(enforced)!;
  const req = amount(r.requests[name]);
  const lim = amount(r.limits[name]);
  const shown = formatAmount(min);
  if (!req) return `minimum ${name} usage per ${type} is ${shown}.  No request is specified.`;
  if (compareAmounts(req, min) < 0) return `minimum ${name} usage per ${type} is ${shown}, but request is ${formatAmount(req)}.`;
  if (lim && compareAmounts(lim, min) < 0) return `minimum ${name} usage per ${type} is ${shown}, but limit is ${formatAmount(lim)}.`;
  return undefined;
}

function maxConstraint(type: string, name: string, enforced: unknown, r: { requests: List; limits: List }): string | undefined {
  const max = amount(enforced)!;
  const req = amount(r.requests[name]);
  const lim = amount(r.limits[name]);
  const shown = formatAmount(max);
  if (!lim) return `maximum ${name} usage per ${type} is ${shown}.  No limit is specified.`;
  if (compareAmounts(lim, max) > 0) return `maximum ${name} usage per ${type} is ${shown}, but limit is ${formatAmount(lim)}.`;
  if (req && compareAmounts(req, max) > 0) return `maximum ${name} usage per ${type} is ${shown}, but request is ${formatAmount(req)}.`;
  return undefined;
}

function ratioConstraint(type: string, name: string, enforced: unknown, r: { requests: List; limits: List }): string | undefined {
  const ratio = amount(enforced)!;
  const req = amount(r.requests[name]);
  const lim = amount(r.limits[name]);
  const shown = formatAmount(ratio);
  if (!req || req.nano === 0n)
    return `${name} max limit to request ratio per ${type} is ${shown}, but no request is specified or request is 0.`;
  if (!lim || lim.nano === 0n)
    return `${name} max limit to request ratio per ${type} is ${shown}, but no limit is specified or limit is 0.`;
  const observed = Number(lim.nano) / Number(req.nano);
  if (observed * 1e9 > Number(ratio.nano))
    return `${name} max limit to request ratio per ${type} is ${shown}, but provided ratio is ${observed.toFixed(6)}.`;
  return undefined;
}

/** The errors of one LimitRange item's constraints against some requests and limits. */
function itemErrors(it: Obj, r: { requests: List; limits: List }): string[] {
  const out: (string | undefined)[] = [];
  for (const [k, v] of Object.entries((it.min ?? {}) as List)) out.push(minConstraint(it.type, k, v, r));
  for (const [k, v] of Object.entries((it.max ?? {}) as List)) out.push(maxConstraint(it.type, k, v, r));
  for (const [k, v] of Object.entries((it.maxLimitRequestRatio ?? {}) as List)) out.push(ratioConstraint(it.type, k, v, r));
  return out.filter((e): e is string => e !== undefined);
}

/** Sums of the containers' requests and limits (a resource missing from one container is left out). */
function podTotals(spec: Obj): { requests: List; limits: List } {
  const sum = (kind: 'requests' | 'limits'): List => {
    const lists = ((spec.containers ?? []) as Obj[]).map((c) => (c.resources?.[kind] ?? {}) as List);
    const keys = [...new Set(lists.flatMap((l) => Object.keys(l)))];
    const out: List = {};
    for (const k of keys) {
      const vals = lists.map((l) => amount(l[k]));
      if (vals.some((v) => !v)) continue;
      out[k] = formatAmount({ nano: vals.reduce((a, v) => a + v!.nano, 0n), binary: false } satisfies Amount);
    }
    return out;
  };
  return { requests: sum('requests'), limits: sum('limits') };
}

/** Throws the plugin's 403 when a pod's resources break a LimitRange of its namespace. */
export function validateLimitRanges(store: Store, inf: ResourceInfo, pod: Obj): void {
  if (inf.kind !== 'Pod') return;
  const spec = (pod.spec ?? {}) as Obj;
  const all = [...((spec.containers ?? []) as Obj[]), ...((spec.initContainers ?? []) as Obj[])];
  for (const lr of store.list('limitranges', pod.metadata.namespace)) {
    const errs: string[] = [];
    for (const it of (lr.spec?.limits ?? []) as Obj[]) {
      if (it.type === 'Container')
        for (const c of all) errs.push(...itemErrors(it, { requests: c.resources?.requests ?? {}, limits: c.resources?.limits ?? {} }));
      if (it.type === 'Pod') errs.push(...itemErrors(it, podTotals(spec)));
    }
    if (errs.length) throw forbidden(inf, pod.metadata.name, errs.length === 1 ? errs[0]! : `[${errs.join(', ')}]`);
  }
}

/** The LimitRange defaulting of the API server: `default` from `max`, `defaultRequest` from `default`, then from `min`. */
export function defaultLimitRange(obj: Obj): void {
  for (const it of (obj.spec?.limits ?? []) as Obj[]) {
    if (it.type !== 'Container') continue;
    it.default = { ...(it.max ?? {}), ...(it.default ?? {}) };
    it.defaultRequest = { ...(it.min ?? {}), ...(it.default ?? {}), ...(it.defaultRequest ?? {}) };
    if (!Object.keys(it.default).length) delete it.default;
    if (!Object.keys(it.defaultRequest).length) delete it.defaultRequest;
  }
}
