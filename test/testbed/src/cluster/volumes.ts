/**
 * The kubelet's volume manager: each volume of a pod set up on the node (hostPath with its type
 * check, emptyDir, secret, configMap, projected and downwardAPI files) or the reason it cannot be
 * (a FailedMount message); with the pod's fsGroup, the kubelet's ownership of what it manages.
 */
import { chmodSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Authenticator } from './auth.js';
import { fieldRef } from './containerEnv.js';
import type { PodRt } from './kubeletTypes.js';
import type { Mount } from './rootfs.js';
import type { Obj, Store } from './store.js';

export interface VolumeDeps {
  store: Store;
  auth: Authenticator;
  stateDir: string;
  /** host directory backing `hostPath: path` on a node */
  hostPathDir: (node: string, path: string) => string;
}

export class VolumeManager {
  constructor(private d: VolumeDeps) {}

  volDir(rt: PodRt, name: string): string {
    return join(this.d.stateDir, 'pods', rt.uid, 'volumes', name);
  }

  private writeFiles(dir: string, files: Record<string, Buffer>, mode: number): void {
    mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries(files)) {
      const f = join(dir, k);
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, v);
      chmodSync(f, mode);
    }
  }

  private keyed(data: Record<string, Buffer>, items: Obj[] | undefined, what: string): Record<string, Buffer> | string {
    if (!items?.length) return data;
    const out: Record<string, Buffer> = {};
    for (const it of items) {
      const v = data[it.key];
      if (v === undefined) return `configmap references non-existent config key: ${String(it.key)}`.replace('configmap', what);
      out[it.path] = v;
    }
    return out;
  }

  /** Returns an error message (FailedMount) or undefined when all volumes are ready. */
  prepareVolumes(p: Obj, rt: PodRt): { volume: string; message: string } | undefined {
    for (const v of (p.spec.volumes ?? []) as Obj[]) {
      const why = this.prepareVolume(p, rt, v);
      if (why !== undefined) return { volume: String(v.name), message: `MountVolume.SetUp failed for volume "${String(v.name)}" : ${why}` };
    }
    return undefined;
  }

  /** Sets one volume up on the node; answers why it cannot be. */
  private prepareVolume(p: Obj, rt: PodRt, v: Obj): string | undefined {
    const why = this.setUp(p, rt, v);
    const fsGroup = p.spec?.securityContext?.fsGroup as number | undefined;
    // the volumes the kubelet manages ownership of (not hostPath) go to the pod's fsGroup
    if (why === undefined && fsGroup !== undefined && !v.hostPath) setVolumeOwnership(this.volDir(rt, v.name), fsGroup, !v.emptyDir);
    return why;
  }

  private setUp(p: Obj, rt: PodRt, v: Obj): string | undefined {
    const dir = this.volDir(rt, v.name);
    if (v.hostPath) return this.prepareHostPath(rt, v.hostPath);
    if (v.emptyDir) {
      mkdirSync(dir, { recursive: true, mode: 0o777 });
      chmodSync(dir, 0o777);
      return undefined;
    }
    if (v.secret || v.configMap) {
      const [what, name, data] = v.secret
        ? (['secret', v.secret.secretName, this.secretData(rt.ns, v.secret.secretName)] as const)
        : (['configmap', v.configMap.name, this.configMapData(rt.ns, v.configMap.name, true)] as const);
      const source = (v.secret ?? v.configMap) as Obj;
      if (!data) {
        if (!source.optional) return `${what} "${String(name)}" not found`;
        mkdirSync(dir, { recursive: true });
        return undefined;
      }
      const files = this.keyed(data, source.items, what);
      if (typeof files === 'string') return files;
      this.writeFiles(dir, files, source.defaultMode ?? 0o644);
      return undefined;
    }
    if (v.projected || v.downwardAPI) {
      const files = this.projectedFiles(p, rt, v);
      if (typeof files === 'string') return files;
      this.writeFiles(dir, files, v.projected?.defaultMode ?? v.downwardAPI?.defaultMode ?? 0o644);
      return undefined;
    }
    return 'volume type not supported by the test cluster';
  }

  /** hostPath: the type check, or the directory or file made (DirectoryOrCreate, FileOrCreate). */
  private prepareHostPath(rt: PodRt, source: Obj): string | undefined {
    const hp = this.d.hostPathDir(rt.node, source.path);
    const type = source.type ?? '';
    if (type === 'Directory' && !(existsSync(hp) && statSync(hp).isDirectory()))
      return `hostPath type check failed: ${String(source.path)} is not a directory`;
    if (type === 'File' && !(existsSync(hp) && statSync(hp).isFile()))
      return `hostPath type check failed: ${String(source.path)} is not a file`;
    if (type === 'DirectoryOrCreate' || type === '') {
      if (!existsSync(hp)) mkdirSync(hp, { recursive: true, mode: 0o755 });
    }
    if (type === 'FileOrCreate' && !existsSync(hp)) {
      mkdirSync(dirname(hp), { recursive: true });
      writeFileSync(hp, '');
    }
    return undefined;
  }

  /** A secret's data, decoded; undefined when there is no such secret. */
  private secretData(ns: string, name: string): Record<string, Buffer> | undefined {
    const s = this.d.store.peek('secrets', ns, name);
    return s ? Object.fromEntries(Object.entries(s.data ?? {}).map(([k, x]) => [k, Buffer.from(String(x), 'base64')])) : undefined;
  }

  /** A config map's data (and binaryData when `binary`); undefined when there is no such config map. */
  private configMapData(ns: string, name: string, binary: boolean): Record<string, Buffer> | undefined {
    const cm = this.d.store.peek('configmaps', ns, name);
    if (!cm) return undefined;
    const text = Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, x]) => [k, Buffer.from(String(x))]));
    return binary
      ? { ...text, ...Object.fromEntries(Object.entries(cm.binaryData ?? {}).map(([k, x]) => [k, Buffer.from(String(x), 'base64')])) }
      : text;
  }

  /** The files of a projected (or downwardAPI) volume, source by source; or why one cannot be made. */
  private projectedFiles(p: Obj, rt: PodRt, v: Obj): Record<string, Buffer> | string {
    const files: Record<string, Buffer> = {};
    const sources = v.projected ? ((v.projected.sources ?? []) as Obj[]) : [{ downwardAPI: v.downwardAPI }];
    for (const src of sources) {
      const got = this.projectedSource(p, rt, src);
      if (typeof got === 'string') return got;
      Object.assign(files, got);
    }
    return files;
  }

  private projectedSource(p: Obj, rt: PodRt, src: Obj): Record<string, Buffer> | string {
    if (src.serviceAccountToken) {
      const sat = src.serviceAccountToken as Obj;
      try {
        const t = this.d.auth.issueServiceAccountToken(rt.ns, p.spec.serviceAccountName ?? 'default', {
          expirationSeconds: sat.expirationSeconds ?? 3607,
          pod: p,
          ...(sat.audience ? { audiences: [sat.audience] } : {}),
        });
        return { [sat.path ?? 'token']: Buffer.from(t.token) };
      } catch (e) {
        return (e as Error).message;
      }
    }
    if (src.configMap || src.secret) {
      const [what, ref, data] = src.configMap
        ? (['configmap', src.configMap as Obj, this.configMapData(rt.ns, src.configMap.name, false)] as const)
        : (['secret', src.secret as Obj, this.secretData(rt.ns, src.secret.name)] as const);
      if (!data) return ref.optional ? {} : `${what} "${String(ref.name)}" not found`;
      return this.keyed(data, ref.items, what);
    }
    const files: Record<string, Buffer> = {};
    for (const it of (src.downwardAPI?.items ?? []) as Obj[]) {
      if (it.fieldRef) files[it.path] = Buffer.from(fieldRef(p, it.fieldRef.fieldPath));
    }
    return files;
  }

  hostSource(rt: PodRt, v: Obj): string {
    if (v.hostPath) return this.d.hostPathDir(rt.node, v.hostPath.path);
    return this.volDir(rt, v.name);
  }

  /** The container's volume mounts as host sources and container paths. */
  mountsOf(p: Obj, rt: PodRt, c: Obj): Mount[] {
    return ((c.volumeMounts ?? []) as Obj[])
      .map((m) => {
        const v = ((p.spec.volumes ?? []) as Obj[]).find((x) => x.name === m.name)!;
        let src = this.hostSource(rt, v);
        if (m.subPath) src = join(src, m.subPath);
        return { src, dst: m.mountPath as string, ro: !!m.readOnly || !!v.secret || !!v.configMap || !!v.projected || !!v.downwardAPI };
      })
      .sort((a, b) => a.dst.split('/').length - b.dst.split('/').length);
  }
}

/**
 * The kubelet's SetVolumeOwnership (fsGroupChangePolicy Always): every file and directory of the
 * volume gets the fsGroup as its group, files group-readable (read-only volumes: secret,
 * configMap, projected, downwardAPI) or group-readable and -writable (emptyDir), directories
 * also group-searchable and setgid, so that new files inherit the group.
 */
export function setVolumeOwnership(dir: string, fsGroup: number, readOnly: boolean): void {
  const mask = readOnly ? 0o440 : 0o660;
  const walk = (path: string): void => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    lchownSync(path, st.uid, fsGroup);
    chmodSync(path, (st.mode & 0o7777) | mask | (st.isDirectory() ? 0o2110 : 0));
    if (st.isDirectory()) for (const e of readdirSync(path)) walk(join(path, e));
  };
  walk(dir);
}
