/**
 * Object validation, in the order a real API server applies it:
 *  1. decoding (wrong JSON types → 400 "cannot be handled as a <Kind>"), with unknown-field detection
 *     (fieldValidation=Strict → 400 "strict decoding error: unknown field ...", Warn → Warning header
 *     and the field dropped, Ignore → dropped). The field list comes from @kubernetes/client-node's
 *     OpenAPI-generated models.
 *  2. schema validation against the official OpenAPI schema (required fields, enums) through
 *     kubernetes-models, and the semantic rules of the real validators that the project relies on
 *     (names, labels, images, volumes, Job restartPolicy, immutability) → 422 Invalid with causes.
 */
import * as k8s from '@kubernetes/client-node';
import type { ResourceInfo } from './resources.js';

type Obj = import('./store.js').Obj;
interface Attr {
  name: string;
  baseName: string;
  type: string;
  format: string;
}

const models = k8s as unknown as Record<string, { getAttributeTypeMap?: () => Attr[] } | undefined>;

export interface Cause {
  reason: string;
  message: string;
  field: string;
}
export class DecodeError extends Error {}
export class InvalidError extends Error {
  constructor(public causes: Cause[]) {
    super('invalid');
  }
}

const QUANTITY_MAPS = new Set(['limits', 'requests', 'capacity', 'allocatable', 'hard', 'used', 'overhead']);
const QUANTITY_FIELDS = new Set(['sizeLimit']);
const QUANTITY_RE = /^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$/;

function goType(t: string, format = ''): string {
  if (t === 'number') return format === 'int32' ? 'int32' : format === 'int64' ? 'int64' : 'float64';
  if (t === 'string' || t === 'Date') return 'string';
  if (t === 'boolean') return 'bool';
  if (t === 'IntOrString') return 'intstr.IntOrString';
  const arr = /^Array<(.+)>$/.exec(t);
  if (arr) return `[]${goType(arr[1] ?? '')}`;
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(t);
  if (map) return `map[string]${goType(map[1] ?? '')}`;
  if (t === 'any' || t === 'object') return 'interface {}';
  return `v1.${goStructName(t)}`;
}
function goStructName(t: string): string {
  return t.replace(/^[A-Z][a-z]+(?=V\d)/, '').replace(/^V\d+(?:alpha\d+|beta\d+)?/, '');
}
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'number';
  return typeof v;
}
function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

interface DecodeCtx {
  unknown: string[];
  typeError?: string;
}

/** Where a walked value sits: its JSON path, its Go field path in the enclosing struct, and its field's name. */
interface WalkAt {
  path: string;
  goPath: string;
  parentStruct: string;
  fieldName: string;
}

/** Walks `value` as client-node type `t`; records the first type error and every unknown field; prunes unknown fields. */
function walk(value: unknown, type: { t: string; format: string }, at: WalkAt, ctx: DecodeCtx): void {
  const { t, format } = type;
  const { path, goPath, parentStruct, fieldName } = at;
  if (value === null || value === undefined || ctx.typeError) return;
  const typeErr = (extra = ''): void => {
    ctx.typeError ??= `json: cannot unmarshal ${jsonKind(value)}${extra} into Go struct field ${parentStruct}.${goPath} of type ${goType(t, format)}`;
  };
  if (t === 'any' || t === 'object') return;
  if (t === 'string' || t === 'Date') {
    if (QUANTITY_FIELDS.has(fieldName)) {
      checkQuantity(value, ctx);
      return;
    }
    if (typeof value !== 'string') typeErr();
    return;
  }
  if (t === 'number') {
    if (typeof value !== 'number') {
      typeErr();
      return;
    }
    if ((format === 'int32' || format === 'int64') && !Number.isInteger(value)) typeErr(` ${value}`);
    else if (format === 'int32' && (value > 2147483647 || value < -2147483648)) typeErr(` ${value}`);
    return;
  }
  if (t === 'boolean') {
    if (typeof value !== 'boolean') typeErr();
    return;
  }
  if (t === 'IntOrString') {
    if (typeof value !== 'number' && typeof value !== 'string') typeErr();
    return;
  }
  const arr = /^Array<(.+)>$/.exec(t);
  if (arr) {
    if (!Array.isArray(value)) {
      typeErr();
      return;
    }
    const inner = arr[1] ?? 'any';
    value.forEach((v, i) => walk(v, { t: inner, format: '' }, { ...at, path: `${path}[${i}]` }, ctx));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(t);
  if (map) {
    if (!isObj(value)) {
      typeErr();
      return;
    }
    const inner = map[1] ?? 'any';
    for (const [k, v] of Object.entries(value)) {
      if (inner === 'string' && QUANTITY_MAPS.has(fieldName)) {
        checkQuantity(v, ctx);
        continue;
      }
      walk(v, { t: inner, format: '' }, { ...at, path: `${path}.${k}` }, ctx);
    }
    return;
  }
  const model = models[t];
  const attrs = model?.getAttributeTypeMap?.();
  if (!attrs) return;
  if (!isObj(value)) {
    typeErr();
    return;
  }
  const struct = goStructName(t);
  for (const key of Object.keys(value)) {
    const a = attrs.find((x) => x.baseName === key);
    const sub = path ? `${path}.${key}` : key;
    if (!a) {
      ctx.unknown.push(sub);
      delete value[key];
      continue;
    }
    walk(
      value[key],
      { t: a.type, format: a.format },
      { path: sub, goPath: goPath ? `${goPath}.${key}` : key, parentStruct: struct, fieldName: key },
      ctx,
    );
  }
}
function checkQuantity(v: unknown, ctx: DecodeCtx): void {
  if (v === null) return;
  if (typeof v === 'number') return;
  if (typeof v !== 'string' || !QUANTITY_RE.test(v)) {
    ctx.typeError ??= `quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`;
  }
}

/**
 * Decodes a request body as the given resource (or subresource model). Throws DecodeError with a
 * real server's message; returns the unknown fields found (already pruned from `obj`).
 */
export function decode(info: { kind: string; model: string; version: string }, obj: unknown): string[] {
  const ctx: DecodeCtx = { unknown: [] };
  if (!isObj(obj))
    throw new DecodeError(
      `${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: json: cannot unmarshal ${jsonKind(obj)} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`,
    );
  walk(obj, { t: info.model, format: '' }, { path: '', goPath: '', parentStruct: goStructName(info.model), fieldName: '' }, ctx);
  if (ctx.typeError)
    throw new DecodeError(`${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: ${ctx.typeError}`);
  if (info.kind === 'Secret') {
    for (const [k, v] of Object.entries((obj as Obj).data ?? {})) {
      if (typeof v === 'string' && !/^[A-Za-z0-9+/]*={0,2}$/.test(v.replace(/\s/g, ''))) {
        const bad = v.search(/[^A-Za-z0-9+/=]/);
        throw new DecodeError(
          `Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte ${bad < 0 ? 0 : bad}`,
        );
      }
      void k;
    }
  }
  return ctx.unknown;
}

// ---------------------------------------------------------------------------------- schema (422)

const schemaCache = new Map<string, (d: unknown) => boolean>();
interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
}

async function schemaValidator(name: string): Promise<((d: unknown) => boolean) & { errors?: AjvError[] | null }> {
  let fn = schemaCache.get(name);
  if (!fn) {
    const mod = (await import(`kubernetes-models/_schemas/${name}`)) as { validate: (d: unknown) => boolean };
    fn = mod.validate;
    schemaCache.set(name, fn);
  }
  return fn as ((d: unknown) => boolean) & { errors?: AjvError[] | null };
}

function ajvPath(p: string): string {
  let out = '';
  for (const seg of p.split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(s)) out += `[${s}]`;
    else out += out ? `.${s}` : s;
  }
  return out;
}
const fmt = (v: unknown): string => (typeof v === 'string' ? `"${v}"` : JSON.stringify(v));

export async function schemaCauses(schema: string, obj: Obj): Promise<Cause[]> {
  const fn = await schemaValidator(schema);
  if (fn(obj)) return [];
  const causes: Cause[] = [];
  for (const e of fn.errors ?? []) {
    const base = ajvPath(e.instancePath);
    if (e.keyword === 'required') {
      const field = base ? `${base}.${e.params.missingProperty as string}` : String(e.params.missingProperty);
      causes.push({ reason: 'FieldValueRequired', message: 'Required value', field });
    } else if (e.keyword === 'enum') {
      const v = getPath(obj, e.instancePath);
      const allowed = (e.params.allowedValues as unknown[]).map(fmt).join(', ');
      causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${fmt(v)}: supported values: ${allowed}`, field: base });
    } else if (e.keyword === 'format' || e.keyword === 'type') {
      // decoding already caught real type errors; formats such as int32 ranges too
    } else {
      causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${fmt(getPath(obj, e.instancePath))}`, field: base });
    }
  }
  return dedupe(causes);
}
function getPath(obj: unknown, ptr: string): unknown {
  let cur: unknown = obj;
  for (const seg of ptr.split('/').slice(1)) cur = (cur as Obj | undefined)?.[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  return cur;
}
function dedupe(c: Cause[]): Cause[] {
  const seen = new Set<string>();
  return c.filter((x) => {
    const k = `${x.field}|${x.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ------------------------------------------------------------------------------- semantics (422)

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const invalid = (field: string, value: unknown, detail: string): Cause => ({
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${fmt(value)}: ${detail}`,
  field,
});
const required = (field: string, detail?: string): Cause => ({
  reason: 'FieldValueRequired',
  message: detail ? `Required value: ${detail}` : 'Required value',
  field,
});
const notSupported = (field: string, value: unknown, allowed: string[]): Cause => ({
  reason: 'FieldValueNotSupported',
  message: `Unsupported value: ${fmt(value)}: supported values: ${allowed.map(fmt).join(', ')}`,
  field,
});
const forbidden = (field: string, detail: string): Cause => ({ reason: 'FieldValueForbidden', message: `Forbidden: ${detail}`, field });
const duplicate = (field: string, value: unknown): Cause => ({
  reason: 'FieldValueDuplicate',
  message: `Duplicate value: ${fmt(value)}`,
  field,
});
const notFound = (field: string, value: unknown): Cause => ({ reason: 'FieldValueNotFound', message: `Not found: ${fmt(value)}`, field });

function checkName(info: ResourceInfo, meta: Obj, causes: Cause[]): void {
  const name = meta.name as string | undefined;
  if (!name) {
    if (!meta.generateName) causes.push(required('metadata.name', 'name or generateName is required'));
    return;
  }
  if (info.group === 'rbac.authorization.k8s.io') {
    if (name === '.' || name === '..') causes.push(invalid('metadata.name', name, `may not be '${name}'`));
    else if (/[/%]/.test(name)) causes.push(invalid('metadata.name', name, `may not contain '${name.includes('/') ? '/' : '%'}'`));
    return;
  }
  if (info.kind === 'Namespace') {
    if (name.length > 63) causes.push(invalid('metadata.name', name, 'must be no more than 63 characters'));
    if (!DNS1123_LABEL.test(name)) causes.push(invalid('metadata.name', name, LABEL_MSG));
    return;
  }
  if (name.length > 253) causes.push(invalid('metadata.name', name, 'must be no more than 253 characters'));
  if (!DNS1123_SUBDOMAIN.test(name)) causes.push(invalid('metadata.name', name, SUBDOMAIN_MSG));
}

export function checkLabels(labels: Obj | undefined, field: string, causes: Cause[]): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    const parts = k.split('/');
    const nm = parts.length === 2 ? parts[1]! : parts[0]!;
    if (parts.length > 2 || !QUALIFIED_NAME.test(nm) || nm.length > 63 || (parts.length === 2 && !DNS1123_SUBDOMAIN.test(parts[0]!))) {
      causes.push(
        invalid(
          field,
          k,
          "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
      );
    }
    if (typeof v === 'string') {
      if (v.length > 63) causes.push(invalid(field, v, 'must be no more than 63 characters'));
      else if (!LABEL_VALUE.test(v)) causes.push(invalid(field, v, LABEL_VALUE_MSG));
    }
  }
}

const VOLUME_SOURCES = [
  'hostPath',
  'emptyDir',
  'secret',
  'configMap',
  'projected',
  'downwardAPI',
  'persistentVolumeClaim',
  'nfs',
  'ephemeral',
  'csi',
  'image',
];
function parseQuantity(q: unknown): number {
  if (typeof q === 'number') return q;
  const m = QUANTITY_RE.exec(String(q));
  if (!m) return NaN;
  const n = Number(m[1]);
  const suf = m[2] ?? '';
  const bin: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  const dec: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  if (suf in bin) return n * bin[suf]!;
  if (suf in dec) return n * dec[suf]!;
  const e = /^[eE]([-+]?\d+)$/.exec(suf);
  if (e) return n * 10 ** Number(e[1]);
  return NaN;
}
export { parseQuantity };

export function validatePodSpec(spec: Obj | undefined, f: string, causes: Cause[]): void {
  if (!spec) return;
  const volumes = new Set<string>();
  (spec.volumes as Obj[] | undefined)?.forEach((v, i) => {
    const vf = `${f}.volumes[${i}]`;
    if (!v.name) causes.push(required(`${vf}.name`));
    else if (volumes.has(v.name)) causes.push(duplicate(`${vf}.name`, v.name));
    else if (!DNS1123_LABEL.test(v.name)) causes.push(invalid(`${vf}.name`, v.name, LABEL_MSG));
    volumes.add(v.name);
    const n = VOLUME_SOURCES.filter((s) => v[s] !== undefined && v[s] !== null).length;
    if (n === 0) causes.push(required(vf, 'must specify a volume type'));
    else if (n > 1) causes.push(forbidden(vf, 'may not specify more than 1 volume type'));
    if (v.hostPath && !v.hostPath.path) causes.push(required(`${vf}.hostPath.path`));
    if (v.secret && !v.secret.secretName) causes.push(required(`${vf}.secret.secretName`));
  });
  const containers = spec.containers as Obj[] | undefined;
  if (!containers || containers.length === 0) {
    causes.push(required(`${f}.containers`));
  }
  const names = new Set<string>();
  const checkContainer = (c: Obj, cf: string): void => {
    if (c.name) {
      if (names.has(c.name)) causes.push(duplicate(`${cf}.name`, c.name));
      else if (!DNS1123_LABEL.test(c.name)) causes.push(invalid(`${cf}.name`, c.name, LABEL_MSG));
      names.add(c.name);
    }
    if (!c.image) causes.push(required(`${cf}.image`));
    (c.env as Obj[] | undefined)?.forEach((e, i) => {
      if (!e.name) causes.push(required(`${cf}.env[${i}].name`));
      else if (!ENV_NAME.test(e.name))
        causes.push(
          invalid(
            `${cf}.env[${i}].name`,
            e.name,
            "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
          ),
        );
      if (e.value !== undefined && e.valueFrom)
        causes.push(invalid(`${cf}.env[${i}].valueFrom`, '', 'may not be specified when `value` is not empty'));
    });
    const mountPaths = new Set<string>();
    (c.volumeMounts as Obj[] | undefined)?.forEach((m, i) => {
      if (!m.mountPath) causes.push(required(`${cf}.volumeMounts[${i}].mountPath`));
      else if (mountPaths.has(m.mountPath)) causes.push(invalid(`${cf}.volumeMounts[${i}].mountPath`, m.mountPath, 'must be unique'));
      mountPaths.add(m.mountPath);
      if (m.name && !volumes.has(m.name)) causes.push(notFound(`${cf}.volumeMounts[${i}].name`, m.name));
    });
    const lim = c.resources?.limits as Obj | undefined;
    const req = c.resources?.requests as Obj | undefined;
    // extended resources (e.g. nvidia.com/gpu) cannot be overcommitted
    const extended = (k: string): boolean => k.includes('/') && !k.startsWith('kubernetes.io/') && !k.startsWith('requests.');
    for (const [k, v] of Object.entries(req ?? {})) {
      if (!extended(k)) continue;
      if (!lim || lim[k] === undefined)
        causes.push(required(`${cf}.resources.limits`, 'Limit must be set for non overcommitable resources'));
      else if (parseQuantity(v) < parseQuantity(lim[k]))
        causes.push(invalid(`${cf}.resources.requests[${k}]`, String(v), `must be equal to ${k} limit of ${String(lim[k])}`));
    }
    for (const [k, v] of Object.entries(req ?? {})) {
      if (lim && lim[k] !== undefined && parseQuantity(v) > parseQuantity(lim[k])) {
        causes.push(invalid(`${cf}.resources.requests[${k}]`, String(v), `must be less than or equal to ${k} limit of ${String(lim[k])}`));
      }
      if (parseQuantity(v) < 0) causes.push(invalid(`${cf}.resources.requests[${k}]`, String(v), 'must be greater than or equal to 0'));
    }
  };
  containers?.forEach((c, i) => checkContainer(c, `${f}.containers[${i}]`));
  (spec.initContainers as Obj[] | undefined)?.forEach((c, i) => checkContainer(c, `${f}.initContainers[${i}]`));
}

const nonNeg = (v: unknown, field: string, causes: Cause[]): void => {
  if (typeof v === 'number' && v < 0) causes.push(invalid(field, v, 'must be greater than or equal to 0'));
};

/** A pod's spec, and on update only the fields a real server lets change. */
function podCauses(obj: Obj, old: Obj | undefined, causes: Cause[]): void {
  validatePodSpec(obj.spec, 'spec', causes);
  if (old) {
    const strip = (s: Obj): string =>
      JSON.stringify({
        ...s,
        containers: (s.containers ?? []).map((c: Obj) => ({ ...c, image: '' })),
        activeDeadlineSeconds: 0,
        tolerations: [],
        terminationGracePeriodSeconds: 0,
      });
    if (strip(obj.spec ?? {}) !== strip(old.spec ?? {})) {
      causes.push(
        forbidden(
          'spec',
          'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
        ),
      );
    }
  }
}

/** A Job's template, restart policy, counts, deadline, pod failure policy, and its immutable fields. */
function jobCauses(obj: Obj, old: Obj | undefined, causes: Cause[]): void {
  const spec = (obj.spec ?? {}) as Obj;
  validatePodSpec(spec.template?.spec, 'spec.template.spec', causes);
  checkLabels(spec.template?.metadata?.labels, 'spec.template.labels', causes);
  const rp = spec.template?.spec?.restartPolicy;
  if (rp !== 'OnFailure' && rp !== 'Never') causes.push(notSupported('spec.template.spec.restartPolicy', rp ?? '', ['OnFailure', 'Never']));
  if (spec.podFailurePolicy && rp !== 'Never')
    causes.push(invalid('spec.template.spec.restartPolicy', rp, 'only "Never" is supported when podFailurePolicy is specified'));
  nonNeg(spec.parallelism, 'spec.parallelism', causes);
  nonNeg(spec.completions, 'spec.completions', causes);
  nonNeg(spec.backoffLimit, 'spec.backoffLimit', causes);
  nonNeg(spec.ttlSecondsAfterFinished, 'spec.ttlSecondsAfterFinished', causes);
  if (typeof spec.activeDeadlineSeconds === 'number' && spec.activeDeadlineSeconds <= 0)
    causes.push(invalid('spec.activeDeadlineSeconds', spec.activeDeadlineSeconds, 'must be greater than 0'));
  (spec.podFailurePolicy?.rules as Obj[] | undefined)?.forEach((rule, i) => {
    const rf = `spec.podFailurePolicy.rules[${i}]`;
    if (!rule.onExitCodes && !rule.onPodConditions)
      causes.push(invalid(rf, '', 'specifying one of OnExitCodes and OnPodConditions is required'));
    if (rule.onExitCodes?.operator === 'In' && (rule.onExitCodes.values as number[]).includes(0))
      causes.push(invalid(`${rf}.onExitCodes.values[0]`, 0, 'must not be 0 for the In operator'));
  });
  if (old) {
    const o = old.spec as Obj;
    if (JSON.stringify(spec.template) !== JSON.stringify(o.template) && !(o.suspend && spec.suspend === false)) {
      causes.push(invalid('spec.template', spec.template, 'field is immutable'));
    }
    if (JSON.stringify(spec.selector) !== JSON.stringify(o.selector))
      causes.push(invalid('spec.selector', spec.selector, 'field is immutable'));
    if (spec.completions !== o.completions) causes.push(invalid('spec.completions', spec.completions, 'field is immutable'));
  }
}

/** A (Cluster)RoleBinding's roleRef and subjects; roleRef never changes. */
function bindingCauses(info: ResourceInfo, obj: Obj, old: Obj | undefined, causes: Cause[]): void {
  const ref = (obj.roleRef ?? {}) as Obj;
  if ((ref.apiGroup ?? '') !== 'rbac.authorization.k8s.io')
    causes.push(notSupported('roleRef.apiGroup', ref.apiGroup ?? '', ['rbac.authorization.k8s.io']));
  const kinds = info.kind === 'RoleBinding' ? ['ClusterRole', 'Role'] : ['ClusterRole'];
  if (!kinds.includes(ref.kind ?? '')) causes.push(notSupported('roleRef.kind', ref.kind ?? '', kinds));
  if (!ref.name) causes.push(required('roleRef.name'));
  (obj.subjects as Obj[] | undefined)?.forEach((s, i) => {
    if (!['ServiceAccount', 'User', 'Group'].includes(s.kind))
      causes.push(notSupported(`subjects[${i}].kind`, s.kind, ['ServiceAccount', 'User', 'Group']));
    if (s.kind === 'ServiceAccount' && info.kind === 'ClusterRoleBinding' && !s.namespace)
      causes.push(required(`subjects[${i}].namespace`));
  });
  if (old && JSON.stringify(obj.roleRef) !== JSON.stringify(old.roleRef))
    causes.push(invalid('roleRef', obj.roleRef, 'cannot change roleRef'));
}

/** Secret and ConfigMap keys, and data that `immutable` freezes. */
function dataCauses(obj: Obj, old: Obj | undefined, causes: Cause[]): void {
  for (const k of [...Object.keys(obj.data ?? {}), ...Object.keys(obj.binaryData ?? {})]) {
    if (!/^[-._a-zA-Z0-9]+$/.test(k) || k.length > 253)
      causes.push(
        invalid(
          `data[${k}]`,
          k,
          "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
        ),
      );
  }
  if (old?.immutable) {
    if (JSON.stringify(obj.data) !== JSON.stringify(old.data)) causes.push(forbidden('data', 'field is immutable when `immutable` is set'));
  }
}

/** Semantic validation for create (old undefined) and update. */
export function semanticCauses(info: ResourceInfo, obj: Obj, old?: Obj): Cause[] {
  const causes: Cause[] = [];
  const meta = (obj.metadata ?? {}) as Obj;
  if (!info.virtual) checkName(info, meta, causes);
  checkLabels(meta.labels, 'metadata.labels', causes);
  if (old && meta.name !== old.metadata.name) causes.push(invalid('metadata.name', meta.name, 'field is immutable'));
  switch (info.kind) {
    case 'Pod':
      podCauses(obj, old, causes);
      break;
    case 'Job':
      jobCauses(obj, old, causes);
      break;
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      bindingCauses(info, obj, old, causes);
      break;
    case 'Secret':
    case 'ConfigMap':
      dataCauses(obj, old, causes);
      break;
    default:
  }
  return causes;
}

const BIN_SUFFIX = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const DEC_SUFFIX: [number, string][] = [
  [18, 'E'],
  [15, 'P'],
  [12, 'T'],
  [9, 'G'],
  [6, 'M'],
  [3, 'k'],
  [0, ''],
  [-3, 'm'],
  [-6, 'u'],
  [-9, 'n'],
];

/** A quantity in the canonical form the API server stores ("1000" → "1k", "0.5" → "500m", "1024Mi" → "1Gi"). */
export function canonicalQuantity(q: unknown): unknown {
  const s = typeof q === 'number' ? String(q) : q;
  if (typeof s !== 'string') return q;
  const m = QUANTITY_RE.exec(s);
  if (!m) return q;
  const [, numPart, suffix = ''] = m;
  if (/^[eE]/.test(suffix)) return s;
  const binary = BIN_SUFFIX.includes(suffix) && suffix !== '';
  // value in nano-units as a BigInt (sub-nano precision rounds up, as the API server does)
  const neg = numPart!.startsWith('-');
  const digits = numPart!.replace(/^[+-]/, '');
  const [ip = '0', fp = ''] = digits.split('.');
  let nano = BigInt(ip || '0') * 10n ** 9n + BigInt((fp + '000000000').slice(0, 9) || '0');
  if (fp.length > 9 && /[1-9]/.test(fp.slice(9))) nano += 1n;
  if (binary) nano *= 1024n ** BigInt(BIN_SUFFIX.indexOf(suffix));
  else {
    const e = DEC_SUFFIX.find(([, x]) => x === suffix)?.[0] ?? 0;
    if (e >= 0) nano *= 10n ** BigInt(e);
    else nano /= 10n ** BigInt(-e);
  }
  if (nano === 0n) return '0';
  const sign = neg ? '-' : '';
  const units = 10n ** 9n;
  if (binary && nano % units === 0n) {
    const v = nano / units;
    if (v >= 1024n || v <= -1024n) {
      for (let k = BIN_SUFFIX.length - 1; k > 0; k--) {
        const d = 1024n ** BigInt(k);
        if (v % d === 0n) return `${sign}${v / d}${BIN_SUFFIX[k]!}`;
      }
    }
  }
  for (const [e, suf] of DEC_SUFFIX) {
    const d = 10n ** BigInt(e + 9);
    if (nano % d === 0n) return `${sign}${nano / d}${suf}`;
  }
  return s;
}
