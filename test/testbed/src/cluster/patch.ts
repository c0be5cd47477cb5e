/** The three patch types a Kubernetes API server accepts for built-in types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- patches walk arbitrary JSON documents
type Json = any;

export class PatchError extends Error {
  constructor(
    message: string,
    public code = 422,
  ) {
    super(message);
  }
}

const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));
const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, Json> = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function ptr(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`, 400);
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 JSON patch. */
export function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch', 400);
  let root = clone(doc);
  const parentOf = (segs: string[]): [Json, string] => {
    let cur = root;
    for (const s of segs.slice(0, -1)) {
      cur = Array.isArray(cur) ? cur[Number(s)] : cur?.[s];
      if (cur === undefined || cur === null) throw new PatchError(`doc is missing path: "/${segs.join('/')}": missing value`, 422);
    }
    return [cur, segs[segs.length - 1] ?? ''];
  };
  const get = (path: string): Json => {
    let cur = root;
    for (const s of ptr(path)) {
      cur = Array.isArray(cur) ? cur[Number(s)] : cur?.[s];
      if (cur === undefined) throw new PatchError(`doc is missing path: "${path}": missing value`, 422);
    }
    return cur;
  };
  const remove = (path: string): Json => {
    const segs = ptr(path);
    const [p, k] = parentOf(segs);
    if (Array.isArray(p)) {
      const i = Number(k);
      if (!(i >= 0 && i < p.length)) throw new PatchError(`doc is missing path: "${path}": missing value`, 422);
      return p.splice(i, 1)[0];
    }
    if (!(k in p)) throw new PatchError(`doc is missing path: "${path}": missing value`, 422);
    const v = p[k];
    delete p[k];
    return v;
  };
  const add = (path: string, value: Json): void => {
    const segs = ptr(path);
    if (segs.length === 0) {
      root = clone(value);
      return;
    }
    const [p, k] = parentOf(segs);
    if (Array.isArray(p)) {
      if (k === '-') p.push(clone(value));
      else {
        const i = Number(k);
        if (!(i >= 0 && i <= p.length)) throw new PatchError(`unable to add "${path}": index out of bounds`, 422);
        p.splice(i, 0, clone(value));
      }
    } else p[k] = clone(value);
  };
  for (const op of ops as Json[]) {
    switch (op.op) {
      case 'add':
        add(op.path, op.value);
        break;
      case 'remove':
        remove(op.path);
        break;
      case 'replace':
        remove(op.path);
        add(op.path, op.value);
        break;
      case 'move': {
        const v = remove(op.from);
        add(op.path, v);
        break;
      }
      case 'copy':
        add(op.path, get(op.from));
        break;
      case 'test':
        if (JSON.stringify(get(op.path)) !== JSON.stringify(op.value))
          throw new PatchError(`testing value ${op.path} failed: test failed`, 422);
        break;
      default:
        throw new PatchError(`Unexpected kind: ${String(op.op)}`, 400);
    }
  }
  return root;
}

/**
 * Merge keys of the lists that have a `merge` patch strategy in the built-in types this cluster
 * serves (by field name; the same field name has the same strategy everywhere in these types).
 * Lists not named here are atomic (replaced) except the primitive lists in MERGE_PRIMITIVE.
 */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  ownerReferences: 'uid',
  conditions: 'type',
  hostAliases: 'ip',
  topologySpreadConstraints: 'topologyKey',
  resourceClaims: 'name',
  secrets: 'name',
  addresses: 'type',
  taints: 'key',
  containerStatuses: 'name',
  initContainerStatuses: 'name',
  podIPs: 'ip',
  hostIPs: 'ip',
  readinessGates: 'conditionType',
  schedulingGates: 'name',
};
const MERGE_PRIMITIVE = new Set(['finalizers']);

/** Strategic merge patch (the subset of directives kubectl emits: $patch, $retainKeys, $setElementOrder, $deleteFromPrimitiveList). */
export function strategicMergePatch(original: Json, patch: Json): Json {
  if (!isObj(patch)) throw new PatchError('json: cannot unmarshal array into Go value of type map[string]interface {}', 400);
  return smpObject(isObj(original) ? clone(original) : {}, patch);
}

function smpObject(orig: Record<string, Json>, patch: Record<string, Json>): Json {
  if (patch.$patch === 'replace') {
    const p = { ...patch };
    delete p.$patch;
    return stripDirectives(p);
  }
  if (patch.$patch === 'delete') return undefined;
  let out = orig;
  const retain = patch.$retainKeys as string[] | undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[field])) out[field] = (out[field] as Json[]).filter((x) => !(v as Json[]).includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const cur = out[k];
    if (Array.isArray(v)) {
      out[k] = smpList(k, Array.isArray(cur) ? cur : [], v, patch[`$setElementOrder/${k}`] as Json[] | undefined);
    } else if (isObj(v)) {
      const r = smpObject(isObj(cur) ? cur : {}, v);
      if (r === undefined) delete out[k];
      else out[k] = r;
    } else out[k] = v;
  }
  if (retain) out = Object.fromEntries(Object.entries(out).filter(([k]) => retain.includes(k)));
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObj(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => !k.startsWith('$'))
      .map(([k, x]) => [k, stripDirectives(x)]),
  );
}

function smpList(field: string, orig: Json[], patch: Json[], order: Json[] | undefined): Json[] {
  const key = MERGE_KEYS[field];
  if (MERGE_PRIMITIVE.has(field)) {
    const out = [...orig];
    for (const x of patch) if (!out.includes(x)) out.push(x);
    return out;
  }
  if (!key) {
    const rep = patch.find((x) => isObj(x) && x.$patch === 'replace');
    return stripDirectives(rep ? patch.filter((x) => x !== rep) : patch);
  }
  if (patch.some((x) => isObj(x) && x.$patch === 'replace'))
    return stripDirectives(patch.filter((x) => !(isObj(x) && x.$patch === 'replace')));
  const out = orig.map((x) => clone(x));
  for (const p of patch) {
    if (!isObj(p)) continue;
    const idx = out.findIndex((x) => isObj(x) && x[key] === p[key]);
    if (p.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = smpObject(out[idx], p);
    else out.push(smpObject({}, p));
  }
  if (order) {
    const pos = (x: Json): number => {
      const i = order.findIndex((o) => isObj(o) && o[key] === x[key]);
      return i < 0 ? Number.MAX_SAFE_INTEGER : i;
    };
    out.sort((a, b) => pos(a) - pos(b));
  }
  return out;
}
