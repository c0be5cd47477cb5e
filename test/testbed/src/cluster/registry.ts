/**
 * The storage layer of the API server: defaulting, admission, validation, finalizers and graceful
 * deletion, shared by the HTTP handlers and the in-process controllers.
 */
import { randomUUID } from 'node:crypto';
import { now, randSuffix } from './names.js';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound } from './errors.js';
import { findResource, gvString, resKey, type ResourceInfo } from './resources.js';
import { clone, Store, type Obj } from './store.js';
import { DecodeError, canonicalQuantity, decode, schemaCauses, semanticCauses } from './validate.js';
import { strategicMergePatch, mergePatch, jsonPatch, PatchError } from './patch.js';
import { Admission } from './admission/index.js';
import { defaultLimitRange } from './admission/limitRanger.js';

/** Thrown when the stored object changed between read and write (retried or turned into 409). */
class StaleRead extends Error {}

export { now, randSuffix } from './names.js';

export interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: string;
  subresource?: string;
  /** validating admission of the request (after validation): the new object and, for an update, the stored one */
  validateAdmission?: (obj: Obj, old: Obj | undefined) => void;
}
export interface DeleteOptions {
  propagationPolicy?: string;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}
/** Which object a write is about: its resource, namespace (undefined when cluster-scoped) and name. */
export interface ObjectRef {
  inf: ResourceInfo;
  ns: string | undefined;
  name: string;
}
/** A patch body and its media type (JSON patch, merge patch or strategic merge patch). */
export interface PatchBody {
  contentType: string;
  patch: unknown;
}
export interface WriteResult {
  obj: Obj;
  warnings: string[];
  created?: boolean;
}

export function info(group: string, plural: string): ResourceInfo {
  const i = findResource(group, 'v1', plural);
  if (!i) throw new Error(`unknown resource ${group}/${plural}`);
  return i;
}

export class Registry {
  /** hook run after every change (controllers kick their loops from it) */
  onChange: () => void = () => {};
  /** the admission chain (admission/index.ts) */
  readonly admission: Admission;
  constructor(public store: Store) {
    this.admission = new Admission(store);
  }

  get(inf: ResourceInfo, ns: string | undefined, name: string): Obj {
    const o = this.store.get(resKey(inf), inf.namespaced ? ns : undefined, name);
    if (!o) throw notFound(inf, name);
    return o;
  }
  tryGet(inf: ResourceInfo, ns: string | undefined, name: string): Obj | undefined {
    return this.store.get(resKey(inf), inf.namespaced ? ns : undefined, name);
  }
  list(inf: ResourceInfo, ns?: string): Obj[] {
    return this.store.list(resKey(inf), inf.namespaced ? ns : undefined);
  }

  private decodeBody(inf: ResourceInfo, body: unknown, opts: WriteOptions, wrap = true): string[] {
    let unknown: string[];
    try {
      unknown = decode(inf, body);
    } catch (e) {
      if (e instanceof DecodeError) throw badRequest(e.message);
      throw e;
    }
    const fv = opts.fieldValidation ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(fv)) throw badRequest(`fieldValidation must be one of Strict, Warn, Ignore; got ${fv}`);
    if (unknown.length && fv === 'Strict') {
      const strict = `strict decoding error: ${unknown.map((u) => `unknown field "${u}"`).join(', ')}`;
      throw badRequest(wrap ? `${inf.kind} in version "${inf.version}" cannot be handled as a ${inf.kind}: ${strict}` : strict);
    }
    return fv === 'Warn' ? unknown.map((u) => `unknown field "${u}"`) : [];
  }

  private async validate(inf: ResourceInfo, obj: Obj, old?: Obj): Promise<void> {
    const seen = new Set<string>();
    // The OpenAPI schema marks some struct-valued fields required that the server decodes as zero
    // values and then reports field by field (as semanticCauses does): drop those schema causes.
    const zeroValued = new Set(['spec.template', 'roleRef', 'spec']);
    const schema = (await schemaCauses(inf.schema, obj)).filter((c) => !(c.reason === 'FieldValueRequired' && zeroValued.has(c.field)));
    const causes = [...schema, ...semanticCauses(inf, obj, old)].filter((c) => {
      const k = `${c.field}|${c.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (causes.length) throw invalid(inf, obj.metadata?.name ?? '', causes);
  }

  checkKind(inf: ResourceInfo, body: Obj): void {
    const gv = gvString(inf.group, inf.version);
    if (body.apiVersion === undefined) body.apiVersion = gv;
    if (body.kind === undefined) body.kind = inf.kind;
    if (body.apiVersion !== gv)
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${gv})`);
    if (body.kind !== inf.kind)
      throw badRequest(
        `${String(body.kind)} in version "${inf.version}" cannot be handled as a ${inf.kind}: the kind in the data (${String(body.kind)}) does not match the expected kind (${inf.kind})`,
      );
  }

  async create(inf: ResourceInfo, ns: string | undefined, body: unknown, opts: WriteOptions = {}): Promise<WriteResult> {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest(
        `${inf.kind} in version "v1" cannot be handled as a ${inf.kind}: json: cannot unmarshal ${Array.isArray(body) ? 'array' : typeof body} into Go value of type v1.${inf.kind}`,
      );
    const obj = body as Obj;
    this.checkKind(inf, obj);
    const warnings = this.decodeBody(inf, obj, opts);
    obj.metadata ??= {};
    const meta = obj.metadata as Obj;
    if (inf.namespaced) {
      if (meta.namespace && ns && meta.namespace !== ns)
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = ns ?? meta.namespace ?? 'default';
      const nsObj = this.store.peek('namespaces', undefined, meta.namespace);
      if (!nsObj)
        throw new ApiError(404, 'NotFound', `namespaces "${meta.namespace}" not found`, { name: meta.namespace, kind: 'namespaces' });
      if (nsObj.metadata.deletionTimestamp) {
        throw new ApiError(
          403,
          'Forbidden',
          `${inf.group ? `${inf.plural}.${inf.group}` : inf.plural} "${meta.name ?? ''}" is forbidden: unable to create new content in namespace ${meta.namespace} because it is being terminated`,
          {
            name: meta.name ?? '',
            ...(inf.group ? { group: inf.group } : {}),
            kind: inf.plural,
            causes: [
              { reason: 'NamespaceTerminating', message: `namespace ${meta.namespace} is being terminated`, field: 'metadata.namespace' },
            ],
          },
        );
      }
    } else delete meta.namespace;
    if (meta.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randSuffix()}`;
    meta.uid = randomUUID();
    meta.creationTimestamp = now();
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    delete meta.managedFields;
    if (inf.kind === 'Job') meta.generation = 1;
    defaultObject(inf, obj, true);
    const admission = { inf, obj, old: undefined, dryRun: opts.dryRun, own: opts.validateAdmission };
    this.admission.mutate(admission);
    if (inf.kind === 'Pod') obj.status.qosClass = qosClass(obj.spec);
    await this.validate(inf, obj);
    warnings.push(...this.admission.validate(admission));
    const k = resKey(inf);
    if (this.store.peek(k, meta.namespace, meta.name)) throw alreadyExists(inf, meta.name);
    if (opts.dryRun) return { obj, warnings, created: true };
    const stored = this.store.create(k, obj);
    this.onChange();
    return { obj: stored, warnings, created: true };
  }

  async update(target: ObjectRef, body: unknown, opts: WriteOptions = {}): Promise<WriteResult> {
    const { inf, ns, name } = target;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw badRequest(`${inf.kind} in version "v1" cannot be handled as a ${inf.kind}`);
    const obj = body as Obj;
    this.checkKind(inf, obj);
    const warnings = this.decodeBody(inf, obj, opts);
    obj.metadata ??= {};
    if (obj.metadata.name !== undefined && obj.metadata.name !== name)
      throw badRequest(`the name of the object (${String(obj.metadata.name)}) does not match the name on the URL (${name})`);
    if (inf.namespaced && obj.metadata.namespace && obj.metadata.namespace !== ns)
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    for (let attempt = 0; ; attempt++) {
      const old = this.get(inf, ns, name);
      if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(inf, name);
      if (obj.metadata.uid && obj.metadata.uid !== old.metadata.uid)
        throw conflict(
          inf,
          name,
          `Precondition failed: UID in precondition: ${String(obj.metadata.uid)}, UID in object meta: ${String(old.metadata.uid)}`,
        );
      try {
        return await this.commitUpdate(inf, { old, next: clone(obj), warnings }, opts);
      } catch (e) {
        if (!(e instanceof StaleRead)) throw e;
        if (obj.metadata.resourceVersion || attempt > 10) throw conflict(inf, name);
      }
    }
  }

  /** Stores `change.next` over `change.old` (subresource rules, defaults, validation, compare-and-swap). */
  private async commitUpdate(
    inf: ResourceInfo,
    change: { old: Obj; next: Obj; warnings: string[] },
    opts: WriteOptions,
  ): Promise<WriteResult> {
    const { old, next: obj, warnings } = change;
    let next: Obj;
    if (opts.subresource === 'status') {
      next = clone(old);
      next.status = obj.status;
    } else if (opts.subresource === 'finalize' && inf.kind === 'Namespace') {
      next = clone(old);
      next.spec = { ...(next.spec ?? {}), finalizers: obj.spec?.finalizers ?? [] };
    } else {
      next = obj;
      if (inf.hasStatus) next.status = old.status; // status only via /status
      const m = next.metadata as Obj;
      const om = old.metadata as Obj;
      m.name = om.name;
      m.uid = om.uid;
      m.creationTimestamp = om.creationTimestamp;
      if (inf.namespaced) m.namespace = om.namespace;
      else delete m.namespace;
      if (om.deletionTimestamp) {
        m.deletionTimestamp = om.deletionTimestamp;
        m.deletionGracePeriodSeconds = om.deletionGracePeriodSeconds;
      } else {
        delete m.deletionTimestamp;
        delete m.deletionGracePeriodSeconds;
      }
      if (om.generateName) m.generateName = om.generateName;
      if (om.generation !== undefined)
        m.generation = JSON.stringify(next.spec) !== JSON.stringify(old.spec) ? om.generation + 1 : om.generation;
      delete m.managedFields;
      if (om.deletionTimestamp) {
        const added = (m.finalizers ?? []).filter((f: string) => !(om.finalizers ?? []).includes(f));
        if (added.length)
          throw invalid(inf, om.name, [
            {
              reason: 'FieldValueForbidden',
              message:
                'Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{' +
                added.map((a: string) => `"${a}"`).join(', ') +
                '}',
              field: 'metadata.finalizers',
            },
          ]);
      }
      defaultObject(inf, next, false);
    }
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (opts.subresource !== 'status') await this.validate(inf, next, old);
    warnings.push(
      ...this.admission.validate({ inf, obj: next, old, subresource: opts.subresource, dryRun: opts.dryRun, own: opts.validateAdmission }),
    );
    // compare-and-swap, as etcd does: someone else wrote while we validated
    const now2 = this.store.peek(resKey(inf), inf.namespaced ? old.metadata.namespace : undefined, old.metadata.name);
    if (!now2 || now2.metadata.resourceVersion !== old.metadata.resourceVersion) throw new StaleRead();
    if (JSON.stringify(next) === JSON.stringify(old)) return { obj: old, warnings };
    if (opts.dryRun) return { obj: next, warnings };
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
      const gone = this.store.remove(resKey(inf), inf.namespaced ? next.metadata.namespace : undefined, next.metadata.name);
      this.onChange();
      return { obj: gone ?? next, warnings };
    }
    const stored = this.store.update(resKey(inf), next);
    this.onChange();
    return { obj: stored, warnings };
  }

  async patch(target: ObjectRef, body: PatchBody, opts: WriteOptions = {}): Promise<WriteResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.patchOnce(target, body, opts);
      } catch (e) {
        // a patch is re-applied to the latest object, as the API server's update loop does
        if (!(e instanceof StaleRead) || attempt > 10) throw e instanceof StaleRead ? conflict(target.inf, target.name) : e;
      }
    }
  }

  private async patchOnce({ inf, ns, name }: ObjectRef, { contentType, patch }: PatchBody, opts: WriteOptions): Promise<WriteResult> {
    const old = this.get(inf, ns, name);
    let next: Obj;
    const ct = contentType.split(';')[0]!.trim();
    try {
      if (ct === 'application/json-patch+json') next = jsonPatch(old, patch);
      else if (ct === 'application/merge-patch+json') next = mergePatch(old, patch);
      else if (ct === 'application/strategic-merge-patch+json') next = strategicMergePatch(old, patch);
      else
        throw new ApiError(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`,
        );
    } catch (e) {
      if (e instanceof PatchError) throw e.code === 400 ? badRequest(e.message) : new ApiError(e.code, 'Invalid', e.message);
      throw e;
    }
    if (typeof next !== 'object' || next === null) throw badRequest('patch produced a non-object');
    const warnings = this.decodeBody(inf, next, opts, false);
    this.checkKind(inf, next);
    next.metadata ??= {};
    if (next.metadata.resourceVersion && next.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(inf, name);
    if (next.metadata.uid && next.metadata.uid !== old.metadata.uid)
      throw conflict(
        inf,
        name,
        `Precondition failed: UID in precondition: ${String(next.metadata.uid)}, UID in object meta: ${String(old.metadata.uid)}`,
      );
    if (next.metadata.name !== name)
      throw badRequest(`the name of the object (${String(next.metadata.name)}) does not match the name on the URL (${name})`);
    return this.commitUpdate(inf, { old, next, warnings }, opts);
  }

  /**
   * Deletes as a real server does: graceful deletion for scheduled pods, finalizers keep the
   * object (with deletionTimestamp) until removed, foreground/orphan propagation add their finalizer.
   */
  delete(
    inf: ResourceInfo,
    ns: string | undefined,
    name: string,
    opts: DeleteOptions = {},
  ): { obj: Obj; immediate: boolean; warnings: string[] } {
    const old = this.get(inf, ns, name);
    const warnings: string[] = [];
    if (opts.preconditions?.uid && opts.preconditions.uid !== old.metadata.uid)
      throw conflict(
        inf,
        name,
        `Precondition failed: UID in precondition: ${opts.preconditions.uid}, UID in object meta: ${String(old.metadata.uid)}`,
      );
    if (opts.preconditions?.resourceVersion && opts.preconditions.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(
        inf,
        name,
        `Precondition failed: ResourceVersion in precondition: ${opts.preconditions.resourceVersion}, ResourceVersion in object meta: ${String(old.metadata.resourceVersion)}`,
      );
    let policy = opts.propagationPolicy;
    if (policy && !['Orphan', 'Background', 'Foreground'].includes(policy))
      throw invalid(inf, name, [
        {
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`,
          field: 'propagationPolicy',
        },
      ]);
    if (!policy && inf.kind === 'Job') {
      policy = 'Orphan';
      warnings.push(
        'child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning',
      );
    }
    const next = clone(old);
    const m = next.metadata as Obj;
    const fins: string[] = m.finalizers ?? [];
    if (policy === 'Foreground' && !fins.includes('foregroundDeletion')) fins.push('foregroundDeletion');
    if (policy === 'Orphan' && !fins.includes('orphan')) fins.push('orphan');
    let grace = 0;
    if (inf.kind === 'Pod') {
      grace = opts.gracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30;
      const terminal = old.status?.phase === 'Succeeded' || old.status?.phase === 'Failed';
      if (!old.spec?.nodeName || terminal) grace = 0;
    }
    if (inf.kind === 'Namespace') fins.push(...((old.spec?.finalizers ?? []) as string[]).filter((f) => !fins.includes(f)));
    if (opts.dryRun) return { obj: next, immediate: false, warnings };
    if (fins.length === 0 && grace === 0) {
      const gone = this.store.remove(resKey(inf), inf.namespaced ? ns : undefined, name)!;
      this.onChange();
      return { obj: gone, immediate: true, warnings };
    }
    if (m.deletionTimestamp) {
      // already terminating: a shorter grace period may still be applied
      if (grace < (m.deletionGracePeriodSeconds ?? 0)) {
        m.deletionGracePeriodSeconds = grace;
        m.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
        const stored = this.store.update(resKey(inf), next);
        this.onChange();
        return { obj: stored, immediate: false, warnings };
      }
      return { obj: old, immediate: false, warnings };
    }
    m.finalizers = inf.kind === 'Namespace' ? (m.finalizers ?? []) : fins;
    if (inf.kind === 'Namespace') {
      next.status = { ...(next.status ?? {}), phase: 'Terminating' };
    }
    if (m.finalizers.length === 0) delete m.finalizers;
    m.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    m.deletionGracePeriodSeconds = grace;
    const stored = this.store.update(resKey(inf), next);
    this.onChange();
    return { obj: stored, immediate: false, warnings };
  }

  /** Internal helper for controllers: read-modify-write with retries on conflicts. */
  async mutate(target: ObjectRef, fn: (o: Obj) => boolean | void, subresource?: string): Promise<Obj | undefined> {
    for (let attempt = 0; ; attempt++) {
      const cur = this.tryGet(target.inf, target.ns, target.name);
      if (!cur) return undefined;
      if (fn(cur) === false) return cur;
      try {
        return (await this.update(target, cur, subresource ? { subresource } : {})).obj;
      } catch (e) {
        if (e instanceof ApiError && e.code === 404) return undefined;
        if (e instanceof ApiError && e.code === 409 && attempt < 5) continue;
        throw e;
      }
    }
  }
}

// ------------------------------------------------------------------------------------ defaulting

function defaultContainer(c: Obj): void {
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
    const tag = /:([^/:@]+)$/.exec(c.image)?.[1];
    c.imagePullPolicy = !tag || tag === 'latest' ? (c.image.includes('@') ? 'IfNotPresent' : 'Always') : 'IfNotPresent';
  }
  c.resources ??= {};
  for (const kind of ['limits', 'requests'] as const) {
    const r = c.resources[kind] as Record<string, unknown> | undefined;
    if (r) for (const k of Object.keys(r)) r[k] = canonicalQuantity(r[k]);
  }
  if (c.resources.limits && !c.resources.requests) c.resources.requests = { ...c.resources.limits };
  else if (c.resources.limits) for (const [k, v] of Object.entries(c.resources.limits)) c.resources.requests[k] ??= v;
  for (const p of (c.ports ?? []) as Obj[]) p.protocol ??= 'TCP';
  for (const e of (c.env ?? []) as Obj[]) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= 'v1';
}

export function defaultPodSpec(spec: Obj | undefined): void {
  if (!spec) return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as Obj[]) defaultContainer(c);
  for (const v of (spec.volumes ?? []) as Obj[]) {
    if (v.hostPath) v.hostPath.type ??= '';
    if (v.emptyDir?.sizeLimit !== undefined) v.emptyDir.sizeLimit = canonicalQuantity(v.emptyDir.sizeLimit);
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.configMap) v.configMap.defaultMode ??= 420;
  }
  for (const t of (spec.tolerations ?? []) as Obj[]) if (t.operator === undefined && t.key !== undefined) t.operator = 'Equal';
}

function defaultPod(obj: Obj, creating: boolean): void {
  obj.spec ??= {};
  defaultPodSpec(obj.spec);
  if (creating) {
    const spec = obj.spec as Obj;
    spec.enableServiceLinks ??= true;
    spec.priority ??= 0;
    spec.preemptionPolicy ??= 'PreemptLowerPriority';
    const tol = (spec.tolerations ??= []) as Obj[];
    for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
      if (!tol.some((t) => t.key === key)) tol.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
    }
    const qos = qosClass(spec);
    obj.status = { phase: 'Pending', qosClass: qos };
  }
}

function defaultJob(obj: Obj, creating: boolean): void {
  const spec = (obj.spec ??= {}) as Obj;
  // as the real defaulter: both unset -> 1/1; parallelism set alone -> work-queue Job (no completions)
  if (spec.completions === undefined && spec.parallelism === undefined) spec.completions = 1;
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  spec.podReplacementPolicy ??= spec.podFailurePolicy ? 'Failed' : 'TerminatingOrFailed';
  spec.manualSelector ??= undefined;
  if (spec.manualSelector === undefined) delete spec.manualSelector;
  spec.template ??= {};
  spec.template.metadata ??= {};
  spec.template.spec ??= {};
  defaultPodSpec(spec.template.spec);
  if (creating && !spec.manualSelector) {
    const uid = obj.metadata.uid as string;
    const name = obj.metadata.name as string;
    spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    spec.template.metadata.labels = {
      ...(spec.template.metadata.labels ?? {}),
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': name,
      'controller-uid': uid,
      'job-name': name,
    };
  }
  // batch/v1 defaulting (applied again when the stored object is read back): a Job without
  // labels of its own takes its pod template's labels
  if (!obj.metadata.labels || Object.keys(obj.metadata.labels).length === 0) {
    if (spec.template.metadata.labels) obj.metadata.labels = { ...spec.template.metadata.labels };
  }
  if (creating) obj.status = {};
}

function defaultNamespace(obj: Obj, creating: boolean): void {
  obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name };
  obj.spec = { finalizers: ['kubernetes'], ...(obj.spec ?? {}) };
  if (creating) obj.status = { phase: 'Active' };
}

function defaultSecret(obj: Obj, _creating: boolean): void {
  obj.type ??= 'Opaque';
  if (obj.stringData) {
    obj.data = { ...(obj.data ?? {}) };
    for (const [k, v] of Object.entries(obj.stringData as Obj)) obj.data[k] = Buffer.from(String(v)).toString('base64');
    delete obj.stringData;
  }
}

function defaultNode(obj: Obj, creating: boolean): void {
  if (creating) obj.status ??= {};
}

function defaultService(obj: Obj, creating: boolean): void {
  const spec = (obj.spec ??= {}) as Obj;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (creating && spec.clusterIP === undefined)
    spec.clusterIP = `10.96.${Math.floor(Math.random() * 254) + 1}.${Math.floor(Math.random() * 254) + 1}`;
  if (spec.clusterIP && spec.clusterIP !== 'None') spec.clusterIPs ??= [spec.clusterIP];
  spec.ipFamilies ??= ['IPv4'];
  spec.ipFamilyPolicy ??= 'SingleStack';
  spec.internalTrafficPolicy ??= 'Cluster';
  for (const p of (spec.ports ?? []) as Obj[]) {
    p.protocol ??= 'TCP';
    p.targetPort ??= p.port;
  }
  if (creating) obj.status = { loadBalancer: {} };
}

/** Quantities of a resource list in canonical form. */
function canonicalList(list: Obj | undefined): void {
  for (const k of Object.keys(list ?? {})) list![k] = canonicalQuantity(list![k]);
}

function defaultLimitRangeObject(obj: Obj): void {
  for (const it of (obj.spec?.limits ?? []) as Obj[])
    for (const k of ['max', 'min', 'default', 'defaultRequest', 'maxLimitRequestRatio']) canonicalList(it[k]);
  defaultLimitRange(obj);
}

function defaultResourceQuota(obj: Obj, creating: boolean): void {
  obj.spec ??= {};
  canonicalList(obj.spec.hard);
  if (creating) obj.status = {};
}

/** Per kind, the defaults a real API server fills in (again when the stored object is read back). */
const DEFAULTERS: Record<string, (obj: Obj, creating: boolean) => void> = {
  LimitRange: defaultLimitRangeObject,
  ResourceQuota: defaultResourceQuota,
  Pod: defaultPod,
  Job: defaultJob,
  Namespace: defaultNamespace,
  Secret: defaultSecret,
  Node: defaultNode,
  Service: defaultService,
};

function defaultObject(inf: ResourceInfo, obj: Obj, creating: boolean): void {
  DEFAULTERS[inf.kind]?.(obj, creating);
}

export function qosClass(spec: Obj): string {
  const cs = (spec.containers ?? []) as Obj[];
  let anyReq = false;
  let guaranteed = true;
  for (const c of cs) {
    const l = c.resources?.limits ?? {};
    const r = c.resources?.requests ?? {};
    if (Object.keys(l).length || Object.keys(r).length) anyReq = true;
    for (const k of ['cpu', 'memory']) if (l[k] === undefined || String(l[k]) !== String(r[k] ?? l[k])) guaranteed = false;
  }
  if (!anyReq) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}
