/**
 * The Pod Security Standards' checks (pod-security-admission's `policy` package), as pure
 * functions of a pod's metadata and spec, with the real reasons and details:
 *
 * - baseline: non-default capabilities, host namespaces, hostPath volumes, hostPort, privileged,
 *   seccompProfile (no `Unconfined`);
 * - restricted, on top: allowPrivilegeEscalation != false, unrestricted capabilities (must drop
 *   ALL, may add only NET_BIND_SERVICE), restricted volume types, runAsNonRoot != true,
 *   runAsUser=0, seccompProfile (must be RuntimeDefault or Localhost).
 *
 * Each check exists from a minimum policy version (`v1.x`), and a restricted check may replace a
 * baseline one from its version on. Checks run in the real order: baseline checks first, then
 * restricted ones, each group sorted by check id. Not modelled (the project sets none of these):
 * AppArmor, procMount, SELinux options, sysctls, Windows host process, host probes.
 */
import { DEFAULT_CAPABILITIES } from '../securityContext.js';
import type { Obj } from '../store.js';

export type Level = 'privileged' | 'baseline' | 'restricted';
/** A policy version: `latest` or a minor version of 1.x. */
export type Version = { latest: true } | { latest: false; minor: number };

export interface CheckResult {
  reason: string;
  detail: string;
}
type CheckFn = (meta: Obj, spec: Obj) => CheckResult | undefined;
interface Check {
  id: string;
  level: 'baseline' | 'restricted';
  minMinor: number;
  /** baseline checks this one replaces (when it applies) */
  overrides?: string[];
  fn: CheckFn;
}

const joinQuote = (items: string[]): string => (items.length ? `"${items.join('", "')}"` : '');
const plural = (one: string, many: string, n: number): string => (n === 1 ? one : many);
const sortedUnique = (xs: string[]): string[] => [...new Set(xs)].sort();

/** Init, then regular (then ephemeral) containers, as the real visitor walks them. */
function containers(spec: Obj): Obj[] {
  return [...((spec.initContainers ?? []) as Obj[]), ...((spec.containers ?? []) as Obj[]), ...((spec.ephemeralContainers ?? []) as Obj[])];
}
const sc = (c: Obj): Obj | undefined => c.securityContext as Obj | undefined;
const named = (cs: Obj[]): string[] => cs.map((c) => String(c.name));
const containersWord = (cs: string[]): string => `${plural('container', 'containers', cs.length)} ${joinQuote(cs)}`;

/** Baseline allows adding the runtime's default capabilities, NET_RAW excepted. */
const BASELINE_CAPABILITIES = new Set(DEFAULT_CAPABILITIES.filter((x) => x !== 'NET_RAW'));

function capabilitiesBaseline(_m: Obj, spec: Obj): CheckResult | undefined {
  const bad: string[] = [];
  const caps: string[] = [];
  for (const c of containers(spec)) {
    const add = ((sc(c)?.capabilities?.add ?? []) as string[]).filter((x) => !BASELINE_CAPABILITIES.has(x));
    if (add.length) {
      bad.push(String(c.name));
      caps.push(...add);
    }
  }
  if (!bad.length) return undefined;
  return {
    reason: 'non-default capabilities',
    detail: `${containersWord(bad)} must not include ${joinQuote(sortedUnique(caps))} in securityContext.capabilities.add`,
  };
}

function hostNamespaces(_m: Obj, spec: Obj): CheckResult | undefined {
  const used = [spec.hostNetwork ? 'hostNetwork=true' : '', spec.hostPID ? 'hostPID=true' : '', spec.hostIPC ? 'hostIPC=true' : ''].filter(
    Boolean,
  );
  return used.length ? { reason: 'host namespaces', detail: used.join(', ') } : undefined;
}

function hostPathVolumes(_m: Obj, spec: Obj): CheckResult | undefined {
  const vols = ((spec.volumes ?? []) as Obj[]).filter((v) => v.hostPath).map((v) => String(v.name));
  return vols.length ? { reason: 'hostPath volumes', detail: `${plural('volume', 'volumes', vols.length)} ${joinQuote(vols)}` } : undefined;
}

function hostPorts(_m: Obj, spec: Obj): CheckResult | undefined {
  const bad: string[] = [];
  const ports: string[] = [];
  for (const c of containers(spec)) {
    const hp = ((c.ports ?? []) as Obj[]).map((p) => Number(p.hostPort ?? 0)).filter((p) => p !== 0);
    if (hp.length) {
      bad.push(String(c.name));
      ports.push(...hp.map(String));
    }
  }
  if (!bad.length) return undefined;
  const list = sortedUnique(ports);
  return {
    reason: 'hostPort',
    detail: `${containersWord(bad)} ${plural('uses', 'use', bad.length)} ${plural('hostPort', 'hostPorts', list.length)} ${list.join(', ')}`,
  };
}

function privileged(_m: Obj, spec: Obj): CheckResult | undefined {
  const bad = named(containers(spec).filter((c) => sc(c)?.privileged === true));
  return bad.length ? { reason: 'privileged', detail: `${containersWord(bad)} must not set securityContext.privileged=true` } : undefined;
}

const validSeccomp = (t: unknown): boolean => t === 'RuntimeDefault' || t === 'Localhost';

/** Who sets an explicitly bad value ("pod", "containers …"), the bad values, and the containers that set none. */
function seccompSetters(spec: Obj): { setters: string[]; values: string[]; podSet: boolean; unset: string[] } {
  const setters: string[] = [];
  const values: string[] = [];
  const podType = spec.securityContext?.seccompProfile?.type as string | undefined;
  if (podType !== undefined && !validSeccomp(podType)) {
    setters.push('pod');
    values.push(podType);
  }
  const badContainers: string[] = [];
  const unset: string[] = [];
  for (const c of containers(spec)) {
    const t = sc(c)?.seccompProfile?.type as string | undefined;
    if (t === undefined) unset.push(String(c.name));
    else if (!validSeccomp(t)) {
      badContainers.push(String(c.name));
      values.push(t);
    }
  }
  if (badContainers.length) setters.push(containersWord(badContainers));
  return { setters, values: sortedUnique(values), podSet: podType !== undefined && validSeccomp(podType), unset };
}

function seccompBaseline(_m: Obj, spec: Obj): CheckResult | undefined {
  const { setters, values } = seccompSetters(spec);
  if (!setters.length) return undefined;
  return {
    reason: 'seccompProfile',
    detail: `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(values)}`,
  };
}

function seccompRestricted(m: Obj, spec: Obj): CheckResult | undefined {
  const bad = seccompBaseline(m, spec);
  if (bad) return bad;
  const { podSet, unset } = seccompSetters(spec);
  if (podSet || !unset.length) return undefined;
  return {
    reason: 'seccompProfile',
    detail: `pod or ${containersWord(unset)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
  };
}

function allowPrivilegeEscalation(_m: Obj, spec: Obj): CheckResult | undefined {
  const bad = named(containers(spec).filter((c) => sc(c)?.allowPrivilegeEscalation !== false));
  return bad.length
    ? {
        reason: 'allowPrivilegeEscalation != false',
        detail: `${containersWord(bad)} must set securityContext.allowPrivilegeEscalation=false`,
      }
    : undefined;
}

function capabilitiesRestricted(_m: Obj, spec: Obj): CheckResult | undefined {
  const missingDropAll: string[] = [];
  const adding: string[] = [];
  const caps: string[] = [];
  for (const c of containers(spec)) {
    const cap = sc(c)?.capabilities as Obj | undefined;
    if (!((cap?.drop ?? []) as string[]).includes('ALL')) missingDropAll.push(String(c.name));
    const add = ((cap?.add ?? []) as string[]).filter((x) => x !== 'NET_BIND_SERVICE');
    if (add.length) {
      adding.push(String(c.name));
      caps.push(...add);
    }
  }
  const details = [
    missingDropAll.length ? `${containersWord(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]` : '',
    adding.length ? `${containersWord(adding)} must not include ${joinQuote(sortedUnique(caps))} in securityContext.capabilities.add` : '',
  ].filter(Boolean);
  return details.length ? { reason: 'unrestricted capabilities', detail: details.join('; ') } : undefined;
}

const ALLOWED_VOLUME_SOURCES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'image',
  'persistentVolumeClaim',
  'projected',
  'secret',
];
const VOLUME_SOURCE_NAMES = [
  'hostPath',
  'gcePersistentDisk',
  'awsElasticBlockStore',
  'gitRepo',
  'nfs',
  'iscsi',
  'glusterfs',
  'rbd',
  'flexVolume',
  'cinder',
  'cephfs',
  'flocker',
  'fc',
  'azureFile',
  'vsphereVolume',
  'quobyte',
  'azureDisk',
  'photonPersistentDisk',
  'portworxVolume',
  'scaleIO',
  'storageos',
];

function restrictedVolumes(_m: Obj, spec: Obj): CheckResult | undefined {
  const bad: string[] = [];
  const types: string[] = [];
  for (const v of (spec.volumes ?? []) as Obj[]) {
    if (ALLOWED_VOLUME_SOURCES.some((k) => v[k] !== undefined && v[k] !== null)) continue;
    bad.push(String(v.name));
    types.push(VOLUME_SOURCE_NAMES.find((k) => v[k] !== undefined && v[k] !== null) ?? 'unknown');
  }
  if (!bad.length) return undefined;
  const list = sortedUnique(types);
  return {
    reason: 'restricted volume types',
    detail: `${plural('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${plural('uses', 'use', bad.length)} ${plural('restricted volume type', 'restricted volume types', list.length)} ${joinQuote(list)}`,
  };
}

function runAsNonRoot(_m: Obj, spec: Obj): CheckResult | undefined {
  const setters: string[] = [];
  const podValue = spec.securityContext?.runAsNonRoot as boolean | undefined;
  if (podValue === false) setters.push('pod');
  const explicit: string[] = [];
  const implicit: string[] = [];
  for (const c of containers(spec)) {
    const v = sc(c)?.runAsNonRoot as boolean | undefined;
    if (v === false) explicit.push(String(c.name));
    else if (v === undefined && podValue !== true) implicit.push(String(c.name));
  }
  if (explicit.length) setters.push(containersWord(explicit));
  if (setters.length)
    return { reason: 'runAsNonRoot != true', detail: `${setters.join(' and ')} must not set securityContext.runAsNonRoot=false` };
  if (implicit.length)
    return { reason: 'runAsNonRoot != true', detail: `pod or ${containersWord(implicit)} must set securityContext.runAsNonRoot=true` };
  return undefined;
}

function runAsUser(_m: Obj, spec: Obj): CheckResult | undefined {
  const setters: string[] = [];
  if (spec.securityContext?.runAsUser === 0) setters.push('pod');
  const bad = named(containers(spec).filter((c) => sc(c)?.runAsUser === 0));
  if (bad.length) setters.push(containersWord(bad));
  return setters.length ? { reason: 'runAsUser=0', detail: `${setters.join(' and ')} must not set runAsUser=0` } : undefined;
}

const CHECKS: Check[] = [
  { id: 'capabilities_baseline', level: 'baseline', minMinor: 0, fn: capabilitiesBaseline },
  { id: 'hostNamespaces', level: 'baseline', minMinor: 0, fn: hostNamespaces },
  { id: 'hostPathVolumes', level: 'baseline', minMinor: 0, fn: hostPathVolumes },
  { id: 'hostPorts', level: 'baseline', minMinor: 0, fn: hostPorts },
  { id: 'privileged', level: 'baseline', minMinor: 0, fn: privileged },
  { id: 'seccompProfile_baseline', level: 'baseline', minMinor: 19, fn: seccompBaseline },
  { id: 'allowPrivilegeEscalation', level: 'restricted', minMinor: 8, fn: allowPrivilegeEscalation },
  { id: 'capabilities_restricted', level: 'restricted', minMinor: 22, overrides: ['capabilities_baseline'], fn: capabilitiesRestricted },
  { id: 'restrictedVolumes', level: 'restricted', minMinor: 0, overrides: ['hostPathVolumes'], fn: restrictedVolumes },
  { id: 'runAsNonRoot', level: 'restricted', minMinor: 0, fn: runAsNonRoot },
  { id: 'runAsUser', level: 'restricted', minMinor: 23, fn: runAsUser },
  { id: 'seccompProfile_restricted', level: 'restricted', minMinor: 19, overrides: ['seccompProfile_baseline'], fn: seccompRestricted },
];
/** The newest check version: `latest`, and any later version, evaluate as this one. */
const MAX_MINOR = Math.max(...CHECKS.map((c) => c.minMinor));

/** The failed checks of a pod at a level and version, in the real order (none at privileged). */
export function evaluatePod(level: Level, version: Version, meta: Obj, spec: Obj): CheckResult[] {
  if (level === 'privileged') return [];
  const minor = version.latest ? MAX_MINOR : Math.min(version.minor, MAX_MINOR);
  const applies = CHECKS.filter((c) => c.minMinor <= minor && (c.level === 'baseline' || level === 'restricted'));
  const overridden = new Set(applies.flatMap((c) => c.overrides ?? []));
  return applies
    .filter((c) => !overridden.has(c.id))
    .map((c) => c.fn(meta, spec))
    .filter((r): r is CheckResult => r !== undefined);
}

/** The aggregate detail of failed checks: `reason (detail), reason (detail)`. */
export function forbiddenDetail(results: CheckResult[]): string {
  return results.map((r) => (r.detail ? `${r.reason} (${r.detail})` : r.reason)).join(', ');
}
