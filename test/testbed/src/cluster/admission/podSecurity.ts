/**
 * The PodSecurity admission plugin (on in every kube-apiserver since 1.25), with the default
 * configuration (no exemptions, every mode `privileged:latest` unless a namespace says otherwise).
 *
 * A namespace chooses its policy with labels `pod-security.kubernetes.io/<mode>` (`enforce`,
 * `audit`, `warn`: `privileged`, `baseline` or `restricted`) and `<mode>-version` (`latest` or
 * `v1.x`; `latest` when absent). Without a `warn` label, warn follows a stricter `enforce`.
 *
 * - A pod create is refused (403) when it violates the enforce level:
 *   `pods "x" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "cache")`;
 *   when allowed, a violation of the warn level is a warning
 *   (`would violate PodSecurity "restricted:latest": …`), sent as an HTTP `Warning` header.
 * - Workload objects (Jobs here) are never refused: their pod template gets the warning only, as
 *   the real plugin does; their pods are judged when the Job controller creates them.
 * - A namespace whose labels are not valid is refused (422, the field and the allowed values);
 *   one that tightens `enforce` is warned about the existing pods that violate the new level.
 * - Audit annotations are not kept (there is no audit log).
 */
import { forbidden, invalid } from '../errors.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj, Store } from '../store.js';
import type { Cause } from '../validate.js';
import { evaluatePod, forbiddenDetail, type Level, type Version } from './podSecurityChecks.js';

const PREFIX = 'pod-security.kubernetes.io/';
const LEVELS: Level[] = ['privileged', 'baseline', 'restricted'];

interface LevelVersion {
  level: Level;
  version: Version;
}
interface Policy {
  enforce: LevelVersion;
  audit: LevelVersion;
  warn: LevelVersion;
}

const versionString = (v: Version): string => (v.latest ? 'latest' : `v1.${v.minor}`);
const lvString = (lv: LevelVersion): string => `${lv.level}:${versionString(lv.version)}`;
const sameLv = (a: LevelVersion, b: LevelVersion): boolean => lvString(a) === lvString(b);

function parseVersion(v: string): Version | undefined {
  if (v === 'latest') return { latest: true };
  const m = /^v1\.([0-9]|[1-9][0-9]*)$/.exec(v);
  return m ? { latest: false, minor: Number(m[1]) } : undefined;
}

/** The namespace's policy and the label errors (as the real PolicyToEvaluate reads the labels). */
export function policyOf(labels: Record<string, string> | undefined): { policy: Policy; causes: Cause[] } {
  const latest: Version = { latest: true };
  const policy: Policy = {
    enforce: { level: 'privileged', version: latest },
    audit: { level: 'privileged', version: latest },
    warn: { level: 'privileged', version: latest },
  };
  const causes: Cause[] = [];
  const l = labels ?? {};
  const bad = (key: string, value: string, why: string): void => {
    causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "${value}": ${why}`, field: `metadata.labels[${PREFIX}${key}]` });
  };
  let hasEnforce = false;
  for (const mode of ['enforce', 'audit', 'warn'] as const) {
    const level = l[`${PREFIX}${mode}`];
    if (level !== undefined) {
      if (LEVELS.includes(level as Level)) {
        policy[mode].level = level as Level;
        if (mode === 'enforce') hasEnforce = true;
      } else {
        // an unknown enforce level is read as restricted; audit and warn fail open
        policy[mode].level = mode === 'enforce' ? 'restricted' : 'privileged';
        bad(mode, level, `must be one of ${LEVELS.join(', ')}`);
      }
    }
    const version = l[`${PREFIX}${mode}-version`];
    if (version !== undefined) {
      const v = parseVersion(version);
      if (!v) bad(`${mode}-version`, version, 'must be "latest" or "v1.x"');
      policy[mode].version = v ?? latest;
    }
  }
  if (l[`${PREFIX}warn`] === undefined && hasEnforce && LEVELS.indexOf(policy.enforce.level) > LEVELS.indexOf(policy.warn.level)) {
    policy.warn.level = policy.enforce.level;
    if (l[`${PREFIX}warn-version`] === undefined) policy.warn.version = policy.enforce.version;
  }
  return { policy, causes };
}

/** The violations of a pod at a level, as one detail string (undefined when it passes). */
function violation(lv: LevelVersion, meta: Obj, spec: Obj): string | undefined {
  const failed = evaluatePod(lv.level, lv.version, meta, spec);
  return failed.length ? forbiddenDetail(failed) : undefined;
}

/** A write the plugin looks at: the resource, the new object and (for an update) the stored one. */
export interface PodSecurityRequest {
  inf: ResourceInfo;
  obj: Obj;
  old: Obj | undefined;
  store: Store;
}

/** Throws the plugin's 403 or 422; returns its warnings. */
export function admitPodSecurity(r: PodSecurityRequest): string[] {
  if (r.inf.kind === 'Namespace') return admitNamespace(r);
  if (r.inf.kind !== 'Pod' && r.inf.kind !== 'Job') return [];
  // a pod's spec is immutable where it matters: only creates are judged
  if (r.inf.kind === 'Pod' && r.old) return [];
  const ns = r.store.peek('namespaces', undefined, String(r.obj.metadata?.namespace ?? ''));
  const { policy } = policyOf(ns?.metadata?.labels);
  const [meta, spec] = r.inf.kind === 'Pod' ? [r.obj.metadata as Obj, r.obj.spec as Obj] : podTemplate(r.obj);
  if (r.inf.kind === 'Pod') {
    const denied = violation(policy.enforce, meta, spec);
    if (denied) throw forbidden(r.inf, r.obj.metadata?.name, `violates PodSecurity "${lvString(policy.enforce)}": ${denied}`);
  }
  const warned = violation(policy.warn, meta, spec);
  return warned ? [`would violate PodSecurity "${lvString(policy.warn)}": ${warned}`] : [];
}

function podTemplate(job: Obj): [Obj, Obj] {
  const t = (job.spec?.template ?? {}) as Obj;
  return [(t.metadata ?? {}) as Obj, (t.spec ?? {}) as Obj];
}

function admitNamespace({ inf, obj, old, store }: PodSecurityRequest): string[] {
  const name = String(obj.metadata?.name ?? '');
  const now = policyOf(obj.metadata?.labels);
  if (!old) {
    if (now.causes.length) throw invalid(inf, name, now.causes);
    return [];
  }
  const before = policyOf(old.metadata?.labels);
  if (now.causes.length && JSON.stringify(now.causes) !== JSON.stringify(before.causes)) throw invalid(inf, name, now.causes);
  const e = now.policy.enforce;
  const was = before.policy.enforce;
  if (sameLv(e, was) || e.level === 'privileged') return [];
  if (versionString(e.version) === versionString(was.version) && LEVELS.indexOf(e.level) <= LEVELS.indexOf(was.level)) return [];
  return existingPodWarnings(store, name, e);
}

/** The warnings for existing pods that violate a new enforce level: one per reason, naming a pod and how many others. */
function existingPodWarnings(store: Store, ns: string, enforce: LevelVersion): string[] {
  const byReason = new Map<string, { pod: string; count: number }>();
  for (const p of store.list('pods', ns)) {
    const failed = evaluatePod(enforce.level, enforce.version, p.metadata, p.spec ?? {});
    if (!failed.length) continue;
    const reason = failed.map((f) => f.reason).join(', ');
    const seen = byReason.get(reason);
    if (seen) seen.count++;
    else byReason.set(reason, { pod: String(p.metadata.name), count: 1 });
  }
  if (!byReason.size) return [];
  const podWarnings = [...byReason.entries()]
    .map(([reason, { pod, count }]) => {
      if (count === 1) return `${pod}: ${reason}`;
      return `${pod} (and ${count - 1} other ${count === 2 ? 'pod' : 'pods'}): ${reason}`;
    })
    .sort();
  return [`existing pods in namespace "${ns}" violate the new PodSecurity enforce level "${lvString(enforce)}"`, ...podWarnings];
}
