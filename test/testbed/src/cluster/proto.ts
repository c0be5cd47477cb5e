/**
 * Decoding of the few protobuf request bodies kubectl sends with its typed clients
 * (Content-Type application/vnd.kubernetes.protobuf): SelfSubjectAccessReview (`kubectl auth can-i`),
 * SelfSubjectRulesReview (`kubectl auth can-i --list`), ResourceQuota (`kubectl create quota`)
 * and TokenRequest (`kubectl create token`). Field numbers are those of k8s.io/api generated.proto.
 */
type Fields = Map<number, (Buffer | number)[]>;

function varint(b: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    const byte = b[pos++];
    if (byte === undefined) throw new Error('truncated varint');
    result += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return [result, pos];
    shift += 7;
  }
}

function fields(b: Buffer): Fields {
  const out: Fields = new Map();
  let pos = 0;
  while (pos < b.length) {
    const [key, p1] = varint(b, pos);
    pos = p1;
    const num = Math.floor(key / 8);
    const wire = key & 7;
    let v: Buffer | number;
    if (wire === 0) {
      const [x, p2] = varint(b, pos);
      v = x;
      pos = p2;
    } else if (wire === 2) {
      const [len, p2] = varint(b, pos);
      v = b.subarray(p2, p2 + len);
      pos = p2 + len;
    } else if (wire === 1) {
      v = b.subarray(pos, pos + 8);
      pos += 8;
    } else if (wire === 5) {
      v = b.subarray(pos, pos + 4);
      pos += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    const l = out.get(num) ?? [];
    l.push(v);
    out.set(num, l);
  }
  return out;
}
const str = (f: Fields, n: number): string | undefined => {
  const v = f.get(n)?.[0];
  return Buffer.isBuffer(v) ? v.toString('utf8') : undefined;
};
const strs = (f: Fields, n: number): string[] => (f.get(n) ?? []).filter(Buffer.isBuffer).map((v) => v.toString('utf8'));
const num = (f: Fields, n: number): number | undefined => {
  const v = f.get(n)?.[0];
  return typeof v === 'number' ? v : undefined;
};
const msg = (f: Fields, n: number): Fields | undefined => {
  const v = f.get(n)?.[0];
  return Buffer.isBuffer(v) ? fields(v) : undefined;
};
function map(f: Fields, n: number, bytes = false): Record<string, string> | undefined {
  const entries = (f.get(n) ?? []).filter(Buffer.isBuffer).map((b) => fields(b));
  if (!entries.length) return undefined;
  return Object.fromEntries(
    entries.map((e) => {
      const v = e.get(2)?.[0];
      return [str(e, 1) ?? '', Buffer.isBuffer(v) ? (bytes ? v.toString('base64') : v.toString('utf8')) : ''];
    }),
  );
}
/** A map<string, Quantity> (a Quantity is a message whose field 1 is its string). */
function quantities(f: Fields | undefined, n: number): Record<string, string> | undefined {
  const entries = (f?.get(n) ?? []).filter(Buffer.isBuffer).map((b) => fields(b));
  if (!entries.length) return undefined;
  return Object.fromEntries(entries.map((e) => [str(e, 1) ?? '', (msg(e, 2) && str(msg(e, 2)!, 1)) ?? '']));
}
function meta(f: Fields | undefined): Record<string, unknown> {
  if (!f) return {};
  const o: Record<string, unknown> = {};
  const name = str(f, 1);
  if (name) o.name = name;
  const gen = str(f, 2);
  if (gen) o.generateName = gen;
  const ns = str(f, 3);
  if (ns) o.namespace = ns;
  const labels = map(f, 11);
  if (labels) o.labels = labels;
  const ann = map(f, 12);
  if (ann) o.annotations = ann;
  return o;
}
function clean(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

/** Decodes a kubernetes protobuf envelope ("k8s\0" + runtime.Unknown) into the JSON object it encodes. */
export function decodeProtobuf(body: Buffer): Record<string, unknown> {
  if (body.subarray(0, 4).toString('latin1') !== 'k8s\0') throw new Error('provided object is not a kubernetes protobuf envelope');
  const unknown = fields(body.subarray(4));
  const tm = msg(unknown, 1);
  const apiVersion = tm ? str(tm, 1) : undefined;
  const kind = tm ? str(tm, 2) : undefined;
  const raw = unknown.get(2)?.[0];
  const f = Buffer.isBuffer(raw) ? fields(raw) : (new Map() as Fields);
  const base = { apiVersion, kind, metadata: meta(msg(f, 1)) };
  if (kind === 'SelfSubjectAccessReview') {
    const spec = msg(f, 2);
    const ra = spec ? msg(spec, 1) : undefined;
    const nra = spec ? msg(spec, 2) : undefined;
    return {
      ...base,
      spec: {
        ...(ra
          ? {
              resourceAttributes: clean({
                namespace: str(ra, 1),
                verb: str(ra, 2),
                group: str(ra, 3),
                version: str(ra, 4),
                resource: str(ra, 5),
                subresource: str(ra, 6),
                name: str(ra, 7),
              }),
            }
          : {}),
        ...(nra ? { nonResourceAttributes: clean({ path: str(nra, 1), verb: str(nra, 2) }) } : {}),
      },
    };
  }
  if (kind === 'SelfSubjectRulesReview') {
    const spec = msg(f, 2);
    return { ...base, spec: clean({ namespace: spec ? str(spec, 1) : undefined }) };
  }
  if (kind === 'ResourceQuota') {
    const spec = msg(f, 2);
    return { ...base, spec: clean({ hard: quantities(spec, 1), scopes: spec ? strs(spec, 2) : undefined }) };
  }
  if (kind === 'TokenRequest') {
    const spec = msg(f, 2);
    const bor = spec ? msg(spec, 3) : undefined;
    return {
      ...base,
      spec: clean({
        audiences: spec ? strs(spec, 1) : [],
        expirationSeconds: spec ? num(spec, 4) : undefined,
        boundObjectRef: bor ? clean({ kind: str(bor, 1), apiVersion: str(bor, 2), name: str(bor, 3), uid: str(bor, 4) }) : undefined,
      }),
    };
  }
  if (kind === 'Job') return clean({ ...base, spec: jobSpec(msg(f, 2)) });
  if (kind === 'Pod') return clean({ ...base, spec: podSpec(msg(f, 2)) });
  if (kind === 'Role' || kind === 'ClusterRole')
    return clean({ ...base, rules: (f.get(2) ?? []).filter(Buffer.isBuffer).map((b) => policyRule(fields(b))) });
  if (kind === 'RoleBinding' || kind === 'ClusterRoleBinding') {
    const ref = msg(f, 3);
    return clean({
      ...base,
      subjects: (f.get(2) ?? []).filter(Buffer.isBuffer).map((b) => {
        const x = fields(b);
        return clean({ kind: str(x, 1), apiGroup: str(x, 2), name: str(x, 3), namespace: str(x, 4) });
      }),
      roleRef: ref ? clean({ apiGroup: str(ref, 1), kind: str(ref, 2), name: str(ref, 3) }) : undefined,
    });
  }
  if (kind === 'ServiceAccount') {
    const auto = f.get(4)?.[0];
    return clean({ ...base, automountServiceAccountToken: typeof auto === 'number' ? auto !== 0 : undefined });
  }
  if (kind === 'Namespace' || kind === 'SelfSubjectReview') return base;
  if (kind === 'ConfigMap') return clean({ ...base, data: map(f, 2), binaryData: map(f, 3, true) });
  if (kind === 'Secret') return clean({ ...base, data: map(f, 2, true), type: str(f, 3), stringData: map(f, 4) });
  throw new Error(`protobuf bodies of kind ${String(kind)} are not supported by the test cluster; send JSON`);
}

function policyRule(x: Fields): Record<string, unknown> {
  return clean({
    verbs: strs(x, 1),
    apiGroups: x.has(2) ? strs(x, 2) : undefined,
    resources: x.has(3) ? strs(x, 3) : undefined,
    resourceNames: x.has(4) ? strs(x, 4) : undefined,
    nonResourceURLs: x.has(5) ? strs(x, 5) : undefined,
  });
}
function container(x: Fields): Record<string, unknown> {
  return clean({
    name: str(x, 1),
    image: str(x, 2),
    command: x.has(3) ? strs(x, 3) : undefined,
    args: x.has(4) ? strs(x, 4) : undefined,
    workingDir: str(x, 5),
    env: x.has(7)
      ? (x.get(7) ?? []).filter(Buffer.isBuffer).map((b) => {
          const e = fields(b);
          return clean({ name: str(e, 1), value: str(e, 2) });
        })
      : undefined,
    imagePullPolicy: str(x, 14),
  });
}
function podSpec(x: Fields | undefined): Record<string, unknown> | undefined {
  if (!x) return undefined;
  const list = (n: number): Record<string, unknown>[] | undefined =>
    x.has(n) ? (x.get(n) ?? []).filter(Buffer.isBuffer).map((b) => container(fields(b))) : undefined;
  return clean({
    containers: list(2),
    initContainers: list(20),
    restartPolicy: str(x, 3),
    terminationGracePeriodSeconds: num(x, 4),
    activeDeadlineSeconds: num(x, 5),
    dnsPolicy: str(x, 6),
    nodeSelector: map(x, 7),
    serviceAccountName: str(x, 8),
    nodeName: str(x, 10),
  });
}
function jobSpec(x: Fields | undefined): Record<string, unknown> | undefined {
  if (!x) return undefined;
  const t = msg(x, 6);
  const suspend = num(x, 10);
  return clean({
    parallelism: num(x, 1),
    completions: num(x, 2),
    activeDeadlineSeconds: num(x, 3),
    backoffLimit: num(x, 7),
    ttlSecondsAfterFinished: num(x, 8),
    completionMode: str(x, 9),
    suspend: suspend === undefined ? undefined : suspend !== 0,
    template: t ? clean({ metadata: meta(msg(t, 1)), spec: podSpec(msg(t, 2)) }) : undefined,
  });
}
