/** Helpers over API objects shared by the controllers and the kubelet: pod phases, conditions, requests, deletes. */
import { ApiError } from './errors.js';
import { now, type Registry } from './registry.js';
import type { ResourceInfo } from './resources.js';
import type { Obj } from './store.js';
import { parseQuantity } from './validate.js';

export const isTerminal = (p: Obj): boolean => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
export const cond = (type: string, reason: string, message: string, status = 'True'): Obj => ({
  type,
  status,
  lastProbeTime: now(),
  lastTransitionTime: now(),
  reason,
  message,
});
/** The state the kubelet gives a container it cannot account for when its pod ends. */
export function unknownContainerState(): Obj {
  return {
    terminated: {
      exitCode: 137,
      reason: 'ContainerStatusUnknown',
      message: 'The container could not be located when the pod was terminated',
      startedAt: null,
      finishedAt: now(),
    },
  };
}

export function setCondition(list: Obj[] | undefined, c: Obj): Obj[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  if (i >= 0) {
    const old = out[i]!;
    if (old.status === c.status && old.reason === c.reason && old.message === c.message) return out;
    out[i] = { ...c, lastTransitionTime: old.status === c.status ? old.lastTransitionTime : c.lastTransitionTime };
  } else out.push(c);
  return out;
}
export const hasCond = (o: Obj, type: string): boolean =>
  (o.status?.conditions ?? []).some((c: Obj) => c.type === type && c.status === 'True');

export function podRequests(spec: Obj): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const c of (spec.containers ?? []) as Obj[])
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) sum[k] = (sum[k] ?? 0) + parseQuantity(v);
  for (const c of (spec.initContainers ?? []) as Obj[])
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) sum[k] = Math.max(sum[k] ?? 0, parseQuantity(v));
  return sum;
}

/** Deletes an object as a controller does: a 404 (someone was first) is no error. */
export function deleteIfPresent(reg: Registry, r: ResourceInfo, o: Obj, opts: { policy: string; grace?: number }): void {
  try {
    reg.delete(r, o.metadata.namespace, o.metadata.name, {
      propagationPolicy: opts.policy,
      ...(opts.grace !== undefined ? { gracePeriodSeconds: opts.grace } : {}),
    });
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 404)) throw e;
  }
}

/** Removes one finalizer from an object (read-modify-write, retried on conflicts). */
export async function removeFinalizer(reg: Registry, r: ResourceInfo, o: Obj, f: string): Promise<void> {
  await reg.mutate({ inf: r, ns: o.metadata.namespace, name: o.metadata.name }, (x) => {
    const fins = (x.metadata.finalizers ?? []).filter((y: string) => y !== f);
    if (fins.length === (x.metadata.finalizers ?? []).length) return false;
    if (fins.length) x.metadata.finalizers = fins;
    else delete x.metadata.finalizers;
    return true;
  });
}
