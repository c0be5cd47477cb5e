/** A container's environment as the kubelet builds it: service variables, envFrom, env values and references. */
import type { ImageConfig } from './kubeletTypes.js';
import type { Obj, Store } from './store.js';
import { parseQuantity } from './validate.js';

/** What a container's environment is resolved against: the store, the pod and container, its node and the API port. */
export interface EnvContext {
  store: Store;
  p: Obj;
  ns: string;
  c: Obj;
  node: string;
  apiPort: number;
}

export function resolveEnv(at: EnvContext, base: Record<string, string>, image: ImageConfig): Record<string, string> | string {
  const { store, p, ns, c, node } = at;
  const port = at.apiPort;
  const env: Record<string, string> = {
    ...base,
    ...(image.env ?? {}),
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(port),
    KUBERNETES_SERVICE_PORT_HTTPS: String(port),
    KUBERNETES_PORT: `tcp://127.0.0.1:${port}`,
    KUBERNETES_PORT_443_TCP: `tcp://127.0.0.1:${port}`,
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_PORT: String(port),
    KUBERNETES_PORT_443_TCP_ADDR: '127.0.0.1',
  };
  for (const ef of (c.envFrom ?? []) as Obj[]) {
    const prefix = ef.prefix ?? '';
    if (ef.configMapRef) {
      const cm = store.peek('configmaps', ns, ef.configMapRef.name);
      if (!cm) {
        if (ef.configMapRef.optional) continue;
        return `configmap "${String(ef.configMapRef.name)}" not found`;
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) env[prefix + k] = String(v);
    }
    if (ef.secretRef) {
      const s = store.peek('secrets', ns, ef.secretRef.name);
      if (!s) {
        if (ef.secretRef.optional) continue;
        return `secret "${String(ef.secretRef.name)}" not found`;
      }
      for (const [k, v] of Object.entries(s.data ?? {})) env[prefix + k] = Buffer.from(String(v), 'base64').toString('utf8');
    }
  }
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.valueFrom) {
      const vf = e.valueFrom as Obj;
      if (vf.fieldRef) env[e.name] = fieldRef(p, vf.fieldRef.fieldPath);
      else if (vf.secretKeyRef) {
        const s = store.peek('secrets', ns, vf.secretKeyRef.name);
        if (!s) {
          if (vf.secretKeyRef.optional) continue;
          return `secret "${String(vf.secretKeyRef.name)}" not found`;
        }
        const raw = s.data?.[vf.secretKeyRef.key];
        if (raw === undefined) {
          if (vf.secretKeyRef.optional) continue;
          return `couldn't find key ${String(vf.secretKeyRef.key)} in Secret ${ns}/${String(vf.secretKeyRef.name)}`;
        }
        env[e.name] = Buffer.from(String(raw), 'base64').toString('utf8');
      } else if (vf.configMapKeyRef) {
        const cm = store.peek('configmaps', ns, vf.configMapKeyRef.name);
        if (!cm) {
          if (vf.configMapKeyRef.optional) continue;
          return `configmap "${String(vf.configMapKeyRef.name)}" not found`;
        }
        const raw = cm.data?.[vf.configMapKeyRef.key];
        if (raw === undefined) {
          if (vf.configMapKeyRef.optional) continue;
          return `couldn't find key ${String(vf.configMapKeyRef.key)} in ConfigMap ${ns}/${String(vf.configMapKeyRef.name)}`;
        }
        env[e.name] = String(raw);
      } else if (vf.resourceFieldRef) {
        const r = vf.resourceFieldRef as Obj;
        const target = ((p.spec.containers ?? []) as Obj[]).find((x) => x.name === (r.containerName || c.name)) ?? c;
        const [kind, res] = String(r.resource).split('.') as [string, string];
        const nodeObj = store.peek('nodes', undefined, node);
        const raw = target.resources?.[kind]?.[res] ?? nodeObj?.status?.allocatable?.[res] ?? '0';
        const div = parseQuantity(r.divisor ?? '1') || 1;
        env[e.name] = String(Math.ceil(parseQuantity(raw) / div));
      }
    } else {
      env[e.name] = expandVars(String(e.value ?? ''), env);
    }
  }
  return env;
}

/** The kubelet's `$(VAR)` expansion: `$$` is a literal `$`, an unknown variable stays as written. */
export function expandVars(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([-._a-zA-Z0-9]+)\)/g, (m, n: string | undefined) =>
    m === '$$' ? '$' : n !== undefined && env[n] !== undefined ? env[n] : m,
  );
}

export function fieldRef(p: Obj, path: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return String(p.metadata?.[m[1]!]?.[m[2]!] ?? '');
  switch (path) {
    case 'metadata.name':
      return p.metadata.name;
    case 'metadata.namespace':
      return p.metadata.namespace;
    case 'metadata.uid':
      return p.metadata.uid;
    case 'spec.nodeName':
      return p.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return p.spec.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.podIP':
      return '127.0.0.1';
    case 'status.hostIPs':
    case 'status.podIPs':
      return '127.0.0.1';
    default:
      return '';
  }
}
