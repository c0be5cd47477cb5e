/**
 * The kubelet's local ephemeral storage limits, as its eviction manager enforces them every
 * monitoring period (10 s on a real kubelet), in this order, the first that is exceeded winning:
 *
 * 1. an emptyDir volume with a `sizeLimit`: its usage above the limit;
 * 2. the pod: the usage of its containers (writable layer and logs), its emptyDir volumes and
 *    its /etc/hosts above the sum of its containers' `limits.ephemeral-storage` (only when at
 *    least one container has such a limit);
 * 3. a container: its writable layer and logs above its own limit.
 *
 * The eviction is the kubelet's own (grace period 1 s): pod phase `Failed`, `reason: Evicted`,
 * the messages below, a `Warning Evicted` event, and no `DisruptionTarget` condition (that one
 * is only for node-pressure evictions): the pod failed because of what it did, so a Job counts it
 * against its backoffLimit. Usage is measured as `du` does: the blocks that files take.
 */
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Obj } from './store.js';
import { parseQuantity } from './validate.js';

/** The kubelet's eviction messages (pkg/kubelet/eviction), trailing space included. */
export const evictionMessages = {
  emptyDir: (volume: string, limit: string) => `Usage of EmptyDir volume "${volume}" exceeds the limit "${limit}". `,
  pod: (limit: string) => `Pod ephemeral local storage usage exceeds the total limit of containers ${limit}. `,
  container: (container: string, limit: string) => `Container ${container} exceeded its local ephemeral storage limit "${limit}". `,
};

/** Bytes taken by the files under `path` (allocated blocks, hard links counted once), not following symlinks. */
export function diskUsage(path: string, skipTop: readonly string[] = [], seen = new Set<string>()): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return 0;
  }
  const id = `${st.dev}:${st.ino}`;
  if (seen.has(id)) return 0;
  seen.add(id);
  let total = st.blocks * 512;
  if (!st.isDirectory()) return total;
  let names: string[] = [];
  try {
    names = readdirSync(path);
  } catch {
    return total;
  }
  for (const n of names) if (!skipTop.includes(n)) total += diskUsage(join(path, n), [], seen);
  return total;
}

const BINARY_SUFFIXES = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const DECIMAL_SUFFIXES = ['', 'k', 'M', 'G', 'T', 'P', 'E'];

/** A whole-number quantity in the canonical form the API machinery prints (`3000000000` → `3G`, `2048Mi` → `2Gi`). */
export function canonicalQuantity(q: string): string {
  return formatQuantity(parseQuantity(q), /[KMGTPE]i$/.test(q));
}

/** Bytes as a canonical quantity, in binary (`Mi`) or decimal (`M`) suffixes; binary only for multiples of 1024. */
function formatQuantity(value: number, binarySuffixes: boolean): string {
  if (!Number.isFinite(value) || !Number.isInteger(value) || value === 0) return String(value);
  const binary = binarySuffixes && value % 1024 === 0;
  const [base, suffixes] = binary ? [1024, BINARY_SUFFIXES] : [1000, DECIMAL_SUFFIXES];
  let n = value;
  let i = 0;
  while (i < suffixes.length - 1 && n % base === 0) {
    n /= base;
    i++;
  }
  return `${n}${suffixes[i]}`;
}

/** What the eviction manager measured for a pod: each container's writable layer + logs, each emptyDir volume, the rest. */
export interface PodStorageUsage {
  containers: Map<string, number>;
  emptyDirs: Map<string, number>;
  /** Pod-level files outside containers and volumes (/etc/hosts). */
  other: number;
}

/** The eviction message for a pod over one of its local storage limits; undefined when it is within them. */
export function storageEviction(pod: Obj, usage: PodStorageUsage): string | undefined {
  for (const v of (pod.spec?.volumes ?? []) as Obj[]) {
    const limit = v.emptyDir?.sizeLimit as string | undefined;
    if (limit === undefined || !(parseQuantity(limit) > 0)) continue;
    if ((usage.emptyDirs.get(v.name) ?? 0) > parseQuantity(limit)) return evictionMessages.emptyDir(v.name, canonicalQuantity(limit));
  }
  const containers = (pod.spec?.containers ?? []) as Obj[];
  const limits = containers.map((c) => c.resources?.limits?.['ephemeral-storage'] as string | undefined);
  const first = limits.find((l) => l !== undefined);
  if (first !== undefined) {
    // the sum keeps the format of the first quantity, as resource.Quantity.Add does
    const total = limits.reduce((sum, l) => sum + (l === undefined ? 0 : parseQuantity(l)), 0);
    let used = usage.other;
    for (const u of [...usage.containers.values(), ...usage.emptyDirs.values()]) used += u;
    if (used > total) return evictionMessages.pod(formatQuantity(total, /[KMGTPE]i$/.test(first)));
  }
  for (const [i, c] of containers.entries()) {
    const limit = limits[i];
    if (limit === undefined || parseQuantity(limit) === 0) continue;
    if ((usage.containers.get(c.name) ?? 0) > parseQuantity(limit)) return evictionMessages.container(c.name, canonicalQuantity(limit));
  }
  return undefined;
}
