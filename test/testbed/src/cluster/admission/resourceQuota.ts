/**
 * ResourceQuota: what an object costs, and the admission plugin (the last validating one) that
 * charges creates against the quotas of their namespace.
 *
 * Costs, as the real evaluators count them: every stored object is `count/<resource>[.<group>]`
 * (`count/pods`, `count/jobs.batch`, …); a pod that is not terminal (and not past its deletion
 * grace period) also costs `pods: 1`, `requests.cpu`/`cpu`, `requests.memory`/`memory`,
 * `requests.ephemeral-storage`/`ephemeral-storage`, `limits.*`, and `requests.<extended>` (e.g.
 * `requests.nvidia.com/gpu`), its requests being the larger of its containers' sum and any init
 * container's.
 *
 * Admission, for each quota of the namespace (by name) that tracks something the object costs:
 * a pod must give every container a request or limit for the cpu/memory resources the quota
 * tracks (`failed quota: q: must specify requests.cpu for: main; …`); the quota's status must
 * have been computed (`status unknown for quota: q, resources: …`); then the new use must stay
 * within `hard` (`exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`). An admitted
 * create is charged at once to `status.used` (dry runs are not), and the quota controller
 * (quotaController.ts) recomputes the use from the stored objects, freeing what ended.
 */
import { forbidden } from '../errors.js';
import { addAmounts, amount, amounts, compareAmounts, formatAmount, prettyList, type Amount } from '../quantity.js';
import { resKey, type ResourceInfo } from '../resources.js';
import type { Obj, Store } from '../store.js';

const ONE: Amount = { nano: 10n ** 9n, binary: false };
/** Resources a pod's compute use is counted in (the quota's "pod resources"). */
const POD_RESOURCES = new Set([
  'pods',
  'cpu',
  'memory',
  'ephemeral-storage',
  'requests.cpu',
  'requests.memory',
  'requests.ephemeral-storage',
  'limits.cpu',
  'limits.memory',
  'limits.ephemeral-storage',
]);
/** Resources that every container must request (or limit) once a quota tracks them. */
const MUST_SPECIFY = new Set(['cpu', 'memory', 'requests.cpu', 'requests.memory', 'limits.cpu', 'limits.memory']);
const NATIVE = new Set(['cpu', 'memory', 'ephemeral-storage', 'pods']);

/** `count/pods`, `count/jobs.batch`: the object-count resource of a kind. */
export const countName = (inf: ResourceInfo): string => `count/${inf.group ? `${inf.plural}.${inf.group}` : inf.plural}`;

/** A list of a container's (or a pod's) requests or limits as amounts. */
function sumContainers(spec: Obj, kind: 'requests' | 'limits'): Map<string, Amount> {
  const total = new Map<string, Amount>();
  for (const c of (spec.containers ?? []) as Obj[])
    for (const [k, v] of amounts(c.resources?.[kind])) total.set(k, addAmounts(total.get(k), v));
  for (const c of (spec.initContainers ?? []) as Obj[])
    for (const [k, v] of amounts(c.resources?.[kind])) {
      const cur = total.get(k);
      if (!cur || compareAmounts(v, cur) > 0) total.set(k, v);
    }
  return total;
}

/** What a container (or pod) with these requests and limits costs in compute resources. */
function computeUsage(requests: Map<string, Amount>, limits: Map<string, Amount>): Map<string, Amount> {
  const out = new Map<string, Amount>([['pods', ONE]]);
  for (const r of ['cpu', 'memory', 'ephemeral-storage']) {
    const req = requests.get(r);
    if (req) {
      out.set(r, req);
      out.set(`requests.${r}`, req);
    }
    const lim = limits.get(r);
    if (lim) out.set(`limits.${r}`, lim);
  }
  for (const [k, v] of requests) if (!NATIVE.has(k) && k.includes('/')) out.set(`requests.${k}`, v);
  return out;
}

/** Whether a pod still costs compute: not terminal, and not past the end of its deletion grace period. */
export function podCharged(p: Obj, nowMs = Date.now()): boolean {
  if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') return false;
  const del = p.metadata?.deletionTimestamp as string | undefined;
  return !(del && Date.parse(del) <= nowMs);
}

/** What an object costs. */
export function usageOf(inf: ResourceInfo, o: Obj): Map<string, Amount> {
  const out = new Map<string, Amount>([[countName(inf), ONE]]);
  if (inf.kind === 'Pod' && podCharged(o)) {
    const spec = (o.spec ?? {}) as Obj;
    for (const [k, v] of computeUsage(sumContainers(spec, 'requests'), sumContainers(spec, 'limits'))) out.set(k, v);
  }
  return out;
}

/** The hard resources of a quota that an object of this kind can cost. */
function matching(inf: ResourceInfo, hard: string[]): string[] {
  return hard.filter(
    (h) =>
      h === countName(inf) || (inf.kind === 'Pod' && (POD_RESOURCES.has(h) || (h.startsWith('requests.') && h.slice(9).includes('/')))),
  );
}

/** The plugin's "must specify" check of a pod's containers against the tracked cpu/memory resources. */
function missingRequests(pod: Obj, tracked: string[]): string | undefined {
  const required = tracked.filter((t) => MUST_SPECIFY.has(t));
  if (!required.length) return undefined;
  const missing = new Map<string, string[]>();
  for (const c of [...((pod.spec?.containers ?? []) as Obj[]), ...((pod.spec?.initContainers ?? []) as Obj[])]) {
    const has = computeUsage(amounts(c.resources?.requests), amounts(c.resources?.limits));
    for (const r of required) if (!has.has(r)) missing.set(r, [...(missing.get(r) ?? []), String(c.name)]);
  }
  if (!missing.size) return undefined;
  const parts = [...missing.keys()].sort().map((r) => `${r} for: ${[...new Set(missing.get(r))].sort().join(',')}`);
  return `must specify ${parts.join('; ')}`;
}

/** A create the plugin judges: the resource, the new object, whether it is a dry run, and the store holding the quotas. */
export interface QuotaRequest {
  store: Store;
  inf: ResourceInfo;
  obj: Obj;
  dryRun: boolean;
}

/** Throws the plugin's 403, else charges the create to every quota that tracks it. */
export function admitQuota({ store, inf, obj, dryRun }: QuotaRequest): void {
  const ns = obj.metadata?.namespace as string | undefined;
  if (!inf.namespaced || !ns || inf.virtual) return;
  const name = obj.metadata?.name as string | undefined;
  const quotas = store.list('resourcequotas', ns).sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)));
  const charged: { quota: Obj; tracked: string[] }[] = [];
  for (const q of quotas) {
    const tracked = matching(inf, Object.keys(q.status?.hard ?? {}));
    if (!tracked.length) continue;
    const must = inf.kind === 'Pod' ? missingRequests(obj, tracked) : undefined;
    if (must) throw forbidden(inf, name, `failed quota: ${String(q.metadata.name)}: ${must}`);
    const unknown = tracked.filter((t) => q.status?.used?.[t] === undefined);
    if (unknown.length)
      throw forbidden(inf, name, `status unknown for quota: ${String(q.metadata.name)}, resources: ${tracked.sort().join(',')}`);
    charged.push({ quota: q, tracked });
  }
  if (!charged.length) return;
  const cost = usageOf(inf, obj);
  const updates: Obj[] = [];
  for (const { quota, tracked } of charged) {
    const hard = amounts(quota.status.hard);
    const used = amounts(quota.status.used);
    const requested = new Map([...cost].filter(([k, v]) => tracked.includes(k) && v.nano !== 0n));
    if (!requested.size) continue;
    const exceeded = [...requested.keys()].filter((k) => compareAmounts(addAmounts(used.get(k), requested.get(k)!), hard.get(k)!) > 0);
    if (exceeded.length) {
      const pick = (m: Map<string, Amount>): Map<string, Amount> => new Map(exceeded.map((k) => [k, m.get(k) ?? amount('0')!]));
      throw forbidden(
        inf,
        name,
        `exceeded quota: ${String(quota.metadata.name)}, requested: ${prettyList(pick(requested))}, used: ${prettyList(pick(used))}, limited: ${prettyList(pick(hard))}`,
      );
    }
    const next = structuredClone(quota) as Obj;
    for (const [k, v] of requested) next.status.used[k] = formatAmount(addAmounts(used.get(k), v));
    updates.push(next);
  }
  if (dryRun) return;
  for (const u of updates) store.update('resourcequotas', u);
}

/** What every object of a namespace costs, summed for the resources a quota tracks (`0` for none). */
export function namespaceUsage(store: Store, ns: string, hard: string[], resources: ResourceInfo[]): Record<string, string> {
  const total = new Map<string, Amount>();
  for (const inf of resources) {
    if (!matching(inf, hard).length) continue;
    for (const o of store.list(resKey(inf), ns))
      for (const [k, v] of usageOf(inf, o)) if (hard.includes(k)) total.set(k, addAmounts(total.get(k), v));
  }
  return Object.fromEntries(hard.map((h) => [h, formatAmount(total.get(h) ?? amount('0')!)]));
}
