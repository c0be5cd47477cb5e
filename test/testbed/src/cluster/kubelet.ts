/**
 * The kubelet of every simulated node: runs each container's command as a local process in a
 * private mount namespace (unshare -m) with its volumes bind-mounted at their container paths,
 * reports container states and pod phases as a real kubelet does, and writes container logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  statSync,
  writeFileSync,
  chmodSync,
  rmSync,
  accessSync,
  constants,
  readdirSync,
  readFileSync,
  readlinkSync,
  type WriteStream,
} from 'node:fs';
import { dirname, join, delimiter } from 'node:path';
import { constants as osConstants } from 'node:os';
import { now, type Registry } from './registry.js';
import { clone, type Obj } from './store.js';
import type { Recorder } from './events.js';
import type { Authenticator } from './auth.js';
import { setCondition, isTerminal, unknownContainerState } from './controllers.js';
import { ApiError } from './errors.js';
import { parseQuantity } from './validate.js';
import { podNamespaceArgs } from './host.js';
import { diskUsage, storageEviction, type PodStorageUsage } from './storage.js';
import { ContainerImages, type ContainerImagesOption, type LocalImage } from './images.js';
import {
  RootView,
  effectiveUser,
  enterRootArgs,
  hostsFile,
  instanceRootLines,
  lookupUser,
  shellQuote as q,
  type ContainerUser,
  type HostTools,
  type Mount,
} from './rootfs.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The volume manager's retry back-off after a failed mount (kubelet: 500 ms, doubling to 2m2s). */
const MOUNT_RETRY_FIRST_MS = 500;
const MOUNT_RETRY_MAX_MS = 122_000;

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
}
export interface KubeletOptions {
  stateDir: string;
  logDir: string;
  apiPort: () => number;
  images: Record<string, ImageConfig>;
  missingImages: Set<string>;
  /** images whose next pulls fail transiently (faults.failImagePulls): failures left, and the registry's error */
  pullFaults: Map<string, { remaining: number; detail?: string }>;
  /** container restart back-off base (Kubernetes: 10 s doubling to 5 min) */
  restartBackoffBaseMs: number;
  /** use unshare -m for private mount namespaces (default true) */
  mountNamespaces: boolean;
  /** kill containers whose resident memory exceeds limits.memory (OOMKilled) */
  enforceMemoryLimits: boolean;
  /** how long the pod worker waits for a pod's volumes before recording 'Unable to attach or mount volumes' (Kubernetes: 2m3s) */
  mountTimeoutMs: number;
  /** how often the eviction manager measures local ephemeral storage (Kubernetes: 10 s); 0 turns it off */
  evictionIntervalMs: number;
  /** host directories replaced by an empty private directory in each container */
  privateDirs: string[];
  /** run containers whose image is in this buildah storage inside the image's root (needs mountNamespaces) */
  containerImages?: ContainerImagesOption;
}

type EventFn = (type: 'Normal' | 'Warning', reason: string, msg: string) => void;
type ContainerSource =
  { kind: 'image'; image: LocalImage; root: string } | { kind: 'process'; config: ImageConfig } | { kind: 'missing'; message?: string };
/** An image's read-only root directory on the host and the user a container of it runs as. */
interface ImageRoot {
  dir: string;
  user: ContainerUser;
}
/** How a container is created: its image config, the environment below the pod's, and (image mode) its root and user. */
interface Plan {
  config: ImageConfig;
  baseEnv: Record<string, string>;
  root?: ImageRoot;
}
/**
 * Mount-script lines and the command line the script runs ("$@"): as a child of a
 * signal-forwarding init shell (host processes), or (`pid1`, image mode) by exec, so that the
 * image's entrypoint is PID 1 of the pod as in a real container.
 */
interface ContainerScript {
  lines: string[];
  command: string[];
  pid1?: boolean;
}
/** One container of one pod: the pod object, its runtime record, the container's spec and state. */
interface ContainerRef {
  p: Obj;
  rt: PodRt;
  c: Obj;
  ctr: Ctr;
}
/** What a container script sets up and runs: mounts, working dir, argv, and the PATH argv[0] is looked up on. */
interface CommandLayout {
  mounts: Mount[];
  wd: string;
  argv: string[];
  pathVar: string;
}

interface Ctr {
  name: string;
  init: boolean;
  proc?: ChildProcess;
  pid?: number;
  restartCount: number;
  state: Obj;
  lastState: Obj;
  startedAt?: string;
  oom?: boolean;
  killedBy?: string;
  nextStart?: number;
  /** failed pulls of the container's image so far (they set the pull back-off) */
  pullAttempts: number;
  /** until when pulls of its image are backing off (ImagePullBackOff) */
  pullBackoffUntil?: number;
  out?: WriteStream;
  containerID: string;
  memoryLimit?: number;
  /** the image's id (image mode), reported as the status's imageID */
  imageID?: string;
}
interface PodRt {
  uid: string;
  ns: string;
  name: string;
  node: string;
  ctrs: Map<string, Ctr>;
  started: boolean;
  termSent?: number;
  killSent?: boolean;
  volumesReady: boolean;
  evicted?: { reason: string; message: string };
  initDone: boolean;
  /** the volume manager's retry back-off after a failed mount (500 ms doubling to 2m2s) */
  mountRetry?: { at: number; delayMs: number };
  /** since when the pod worker has waited for the pod's volumes (it gives up every mountTimeoutMs) */
  mountWaitSince?: number;
  gone?: boolean;
  startTime?: string;
}

/** Absolute paths of the host tools the kubelet runs (a container's PATH is not the host's). */
function hostTools(): HostTools & { setpriv: string; sh: string } {
  const find = (name: string): string => resolveExe(name, DEFAULT_PATH) ?? name;
  return { mount: find('mount'), mkdir: find('mkdir'), unshare: find('unshare'), setpriv: find('setpriv'), sh: find('sh') };
}

export class Kubelets {
  private pods = new Map<string, PodRt>();
  private lostNodes = new Set<string>();
  private stopped = false;
  private busy = false;
  private again = false;
  private tick: NodeJS.Timeout;
  private storageTick: NodeJS.Timeout | undefined;
  private tools = hostTools();
  private containerImages: ContainerImages | undefined;
  constructor(
    private reg: Registry,
    private rec: Recorder,
    private auth: Authenticator,
    private o: KubeletOptions,
  ) {
    if (o.containerImages) this.containerImages = new ContainerImages(o.containerImages, () => this.kick());
    // periodic resync, for grace periods and deadlines
    this.tick = setInterval(() => {
      this.enforceMemory();
      this.kick();
    }, 250);
    this.tick.unref?.();
    if (o.evictionIntervalMs > 0) {
      this.storageTick = setInterval(() => this.enforceStorage(), o.evictionIntervalMs);
      this.storageTick.unref?.();
    }
  }

  /**
   * The eviction manager's local storage limits (see storage.ts): each pod with a running
   * container is measured, and one over a limit is evicted with the kubelet's message.
   */
  private enforceStorage(): void {
    for (const rt of this.pods.values()) {
      if (rt.gone || rt.evicted || rt.termSent || ![...rt.ctrs.values()].some((c) => c.state.running)) continue;
      const p = this.reg.store.peek('pods', rt.ns, rt.name);
      if (!p || p.metadata.uid !== rt.uid || p.metadata.deletionTimestamp) continue;
      const message = storageEviction(p, this.storageUsage(p, rt));
      if (message) this.evictForStorage(p, rt, message);
    }
  }

  /** A pod's local storage use: containers' writable layers and logs, emptyDir volumes, /etc/hosts. */
  private storageUsage(p: Obj, rt: PodRt): PodStorageUsage {
    const podDir = join(this.o.stateDir, 'pods', rt.uid);
    const logs = join(this.o.logDir, `${rt.ns}_${rt.name}_${rt.uid}`);
    const containers = new Map<string, number>();
    for (const c of rt.ctrs.values()) {
      if (c.init) continue;
      // an image instance's root holds its writable layer (upper); merged and work are the overlay's
      const layer = diskUsage(join(podDir, 'rootfs', `${c.name}-${c.restartCount}`), ['merged', 'work']);
      containers.set(c.name, layer + diskUsage(join(logs, c.name)));
    }
    const emptyDirs = new Map<string, number>();
    for (const v of (p.spec.volumes ?? []) as Obj[])
      if (v.emptyDir && v.emptyDir.medium !== 'Memory') emptyDirs.set(v.name, diskUsage(this.volDir(rt, v.name)));
    return { containers, emptyDirs, other: diskUsage(join(podDir, 'etc-hosts')) };
  }

  /** The eviction manager's own eviction: grace period 1 s, phase Failed, reason Evicted, no DisruptionTarget. */
  private evictForStorage(p: Obj, rt: PodRt, message: string): void {
    rt.evicted = { reason: 'Evicted', message };
    this.rec.record(
      { ...p, kind: 'Pod', apiVersion: 'v1' },
      { type: 'Warning', reason: 'Evicted', message, component: 'kubelet', host: rt.node },
    );
    const running = [...rt.ctrs.values()].filter((c) => c.pid && c.state.running);
    for (const c of running) {
      c.killedBy = 'evict';
      killGroup(c.pid!, 'SIGTERM');
    }
    setTimeout(() => {
      for (const c of running) if (c.pid && c.state.running) killGroup(c.pid, 'SIGKILL');
    }, 1000).unref?.();
    this.kick();
  }

  /**
   * The kernel's OOM killer for containers with a memory limit: when the resident memory of a
   * container's processes (its PID namespace; its process group without namespaces) exceeds
   * limits.memory, the container is killed and reported as OOMKilled (exit code 137). An init
   * such as tini puts its child in a process group of its own, so the group alone is not enough.
   */
  private enforceMemory(): void {
    if (!this.o.enforceMemoryLimits) return;
    const limited: { c: Ctr; limit: number }[] = [];
    for (const rt of this.pods.values())
      for (const c of rt.ctrs.values()) {
        if (c.state.running && c.pid && c.memoryLimit) limited.push({ c, limit: c.memoryLimit });
      }
    if (!limited.length) return;
    const byNamespace = this.o.mountNamespaces;
    const rss = residentMemoryBy(byNamespace ? (pid) => nsLink(pid, 'pid') : (_pid, stat) => stat[2]);
    for (const { c, limit } of limited) {
      const key = byNamespace ? nsLink(String(c.pid), 'pid_for_children') : String(c.pid);
      // Until its `unshare` has run, the container's pid_for_children is the host's own PID
      // namespace: summing that would charge it with every process on the machine.
      if (byNamespace && key === nsLink(String(process.pid), 'pid')) continue;
      if (key && (rss.get(key) ?? 0) > limit) {
        c.oom = true;
        killGroup(c.pid!, 'SIGKILL');
      }
    }
  }

  nodeRoot(node: string): string {
    return join(this.o.stateDir, 'nodes', node, 'root');
  }
  /** Host directory backing `hostPath` `path` on `node`. */
  hostPathDir(node: string, path: string): string {
    return join(this.nodeRoot(node), path);
  }

  kick(): void {
    if (this.stopped) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    setImmediate(() => {
      void this.sync().finally(() => {
        this.busy = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    clearInterval(this.storageTick);
    const waits: Promise<void>[] = [];
    for (const rt of this.pods.values())
      for (const c of rt.ctrs.values()) {
        if (c.proc && c.pid && c.proc.exitCode === null && c.proc.signalCode === null) {
          waits.push(
            new Promise((r) => {
              const t = setTimeout(r, 2000);
              c.proc!.once('exit', () => {
                clearTimeout(t);
                r();
              });
            }),
          );
          killGroup(c.pid, 'SIGKILL');
        }
      }
    await Promise.all(waits);
  }

  runningPids(): number[] {
    const out: number[] = [];
    for (const rt of this.pods.values())
      for (const c of rt.ctrs.values()) if (c.proc && c.proc.exitCode === null && c.proc.signalCode === null && c.pid) out.push(c.pid);
    return out;
  }

  // --------------------------------------------------------------------------------- faults

  oomKill(uid: string, container?: string): boolean {
    const rt = this.pods.get(uid);
    if (!rt) return false;
    let n = 0;
    for (const c of rt.ctrs.values()) {
      if (container && c.name !== container) continue;
      if (c.proc && c.pid && c.state.running) {
        c.oom = true;
        killGroup(c.pid, 'SIGKILL');
        n++;
      }
    }
    return n > 0;
  }

  /** Kubelet-initiated eviction (node pressure / spot termination): kill, phase Failed, reason Evicted. */
  evict(uid: string, reason: string, message: string): void {
    const rt = this.pods.get(uid);
    if (!rt) return;
    rt.evicted = { reason, message };
    for (const c of rt.ctrs.values())
      if (c.proc && c.pid && c.state.running) {
        c.killedBy = 'evict';
        killGroup(c.pid, 'SIGKILL');
      }
    this.kick();
  }

  nodeAdded(node: string): void {
    this.lostNodes.delete(node);
  }

  /** The node's kubelet disappears: its processes die with it and it stops reporting. */
  loseNode(node: string): void {
    this.lostNodes.add(node);
    for (const rt of this.pods.values()) {
      if (rt.node !== node) continue;
      rt.gone = true;
      for (const c of rt.ctrs.values()) if (c.pid && c.state.running) killGroup(c.pid, 'SIGKILL');
    }
  }

  // ---------------------------------------------------------------------------------- sync

  private async sync(): Promise<void> {
    const store = this.reg.store;
    const seen = new Set<string>();
    for (const p0 of store.list('pods')) {
      const node = p0.spec.nodeName as string | undefined;
      if (!node || this.lostNodes.has(node)) continue;

      seen.add(p0.metadata.uid);
      const rt0 = this.pods.get(p0.metadata.uid);
      // nothing to do for a finished pod whose processes are gone, unless it is being deleted
      if (rt0 && isTerminal(p0) && !p0.metadata.deletionTimestamp && ![...rt0.ctrs.values()].some((c) => c.state.running)) continue;
      try {
        await this.syncPod(p0);
      } catch (e) {
        if (!(e instanceof ApiError)) console.error('[test-cluster] kubelet error', e);
      }
    }
    for (const [uid, rt] of this.pods) {
      if (seen.has(uid) || rt.gone) continue;
      // pod removed from the API (force deletion): kill what is left
      for (const c of rt.ctrs.values()) if (c.pid && c.state.running) killGroup(c.pid, 'SIGKILL');
      if ([...rt.ctrs.values()].every((c) => !c.state.running)) {
        this.pods.delete(uid);
        this.cleanup(rt);
      }
    }
  }

  private cleanup(rt: PodRt): void {
    try {
      rmSync(join(this.o.stateDir, 'pods', rt.uid), { recursive: true, force: true });
    } catch {
      /* ignore */
    }
  }

  private rtFor(p: Obj): PodRt {
    let rt = this.pods.get(p.metadata.uid);
    if (!rt) {
      rt = {
        uid: p.metadata.uid,
        ns: p.metadata.namespace,
        name: p.metadata.name,
        node: p.spec.nodeName,
        ctrs: new Map(),
        started: false,
        volumesReady: false,
        initDone: !(p.spec.initContainers ?? []).length,
      };
      let i = 0;
      for (const c of (p.spec.initContainers ?? []) as Obj[])
        rt.ctrs.set(c.name, {
          name: c.name,
          init: true,
          restartCount: 0,
          state: { waiting: { reason: 'PodInitializing' } },
          lastState: {},
          pullAttempts: 0,
          containerID: `${p.metadata.uid}-${i++}`,
        });
      for (const c of (p.spec.containers ?? []) as Obj[])
        rt.ctrs.set(c.name, {
          name: c.name,
          init: false,
          restartCount: 0,
          state: { waiting: { reason: 'ContainerCreating' } },
          lastState: {},
          pullAttempts: 0,
          containerID: `${p.metadata.uid}-${i++}`,
        });
      this.pods.set(p.metadata.uid, rt);
    }
    return rt;
  }

  private async syncPod(p: Obj): Promise<void> {
    const rt = this.rtFor(p);
    if (isTerminal(p)) {
      // the kubelet finishes a requested deletion of a terminal pod
      if (p.metadata.deletionTimestamp && !(p.metadata.finalizers ?? []).length) {
        this.reg.store.remove('pods', p.metadata.namespace, p.metadata.name);
        this.reg.onChange();
      }
      if ([...rt.ctrs.values()].every((c) => !c.state.running)) return;
    }
    const running = [...rt.ctrs.values()].filter((c) => c.state.running);
    if (p.metadata.deletionTimestamp) {
      await this.syncDeleted(p, rt, running);
      return;
    }
    if (rt.evicted) {
      if (running.length === 0) await this.writeStatus(p, rt, true);
      return;
    }
    if (isTerminal(p)) return;
    if (this.deadlineExceeded(p, rt, running)) return;
    rt.startTime ??= now();
    if (!rt.volumesReady && !(await this.readyVolumes(p, rt))) return;
    await this.startDueContainers(p, rt);
    await this.writeStatus(p, rt, false);
  }

  /** A deleted pod: SIGTERM, SIGKILL after the grace period, and the final status once nothing runs. */
  private async syncDeleted(p: Obj, rt: PodRt, running: Ctr[]): Promise<void> {
    if (!rt.termSent) {
      rt.termSent = Date.now();
      for (const c of running)
        if (c.pid) {
          c.killedBy = 'delete';
          killGroup(c.pid, 'SIGTERM');
        }
      if (running.length)
        this.rec.record(
          { ...p, kind: 'Pod', apiVersion: 'v1' },
          {
            type: 'Normal',
            reason: 'Killing',
            message: `Stopping container ${running.map((c) => c.name).join(', ')}`,
            component: 'kubelet',
            host: rt.node,
          },
        );
    }
    const grace = (p.metadata.deletionGracePeriodSeconds ?? 30) * 1000;
    if (running.length && !rt.killSent && Date.now() - rt.termSent >= grace) {
      rt.killSent = true;
      for (const c of running) if (c.pid) killGroup(c.pid, 'SIGKILL');
    }
    if (running.length === 0) {
      for (const c of rt.ctrs.values())
        if (c.state.waiting) {
          c.state = unknownContainerState();
        }
      await this.writeStatus(p, rt, true);
    }
  }

  /** The pod's own activeDeadlineSeconds: past it, its containers are killed and it fails DeadlineExceeded. */
  private deadlineExceeded(p: Obj, rt: PodRt, running: Ctr[]): boolean {
    if (!(p.spec.activeDeadlineSeconds && rt.startTime && Date.now() - Date.parse(rt.startTime) > p.spec.activeDeadlineSeconds * 1000))
      return false;
    rt.evicted = { reason: 'DeadlineExceeded', message: `Pod was active on the node longer than the specified deadline` };
    for (const c of running) if (c.pid) killGroup(c.pid, 'SIGKILL');
    this.rec.record(
      { ...p, kind: 'Pod', apiVersion: 'v1' },
      {
        type: 'Normal',
        reason: 'DeadlineExceeded',
        message: 'Pod was active on the node longer than the specified deadline',
        component: 'kubelet',
        host: rt.node,
      },
    );
    return true;
  }

  /**
   * Prepares the pod's volumes as the volume manager does: a failed mount records a FailedMount
   * event (aggregated, so its count grows), leaves the pod Pending in ContainerCreating and is
   * retried after a back-off of 500 ms doubling to 2m2s, so that a secret created later is used.
   * As the pod worker gives up waiting for its volumes every `mountTimeoutMs` (2m3s), it records
   * the other FailedMount: 'Unable to attach or mount volumes: unmounted volumes=[…] …'.
   */
  private async readyVolumes(p: Obj, rt: PodRt): Promise<boolean> {
    rt.mountWaitSince ??= Date.now();
    if (rt.mountRetry && Date.now() < rt.mountRetry.at) return false;
    const err = this.prepareVolumes(p, rt);
    if (err) {
      const delayMs = rt.mountRetry ? Math.min(rt.mountRetry.delayMs * 2, MOUNT_RETRY_MAX_MS) : MOUNT_RETRY_FIRST_MS;
      rt.mountRetry = { at: Date.now() + delayMs, delayMs };
      setTimeout(() => this.kick(), delayMs + 5).unref?.();
      const podObj = { ...p, kind: 'Pod', apiVersion: 'v1' };
      this.rec.record(podObj, { type: 'Warning', reason: 'FailedMount', message: err.message, component: 'kubelet', host: rt.node });
      if (Date.now() - rt.mountWaitSince >= this.o.mountTimeoutMs) {
        rt.mountWaitSince = Date.now();
        const message = `Unable to attach or mount volumes: unmounted volumes=[${err.volume}], unattached volumes=[], failed to process volumes=[]: context deadline exceeded`;
        this.rec.record(podObj, { type: 'Warning', reason: 'FailedMount', message, component: 'kubelet', host: rt.node });
      }
      await this.writeStatus(p, rt, false);
      return false;
    }
    rt.mountRetry = undefined;
    rt.volumesReady = true;
    return true;
  }

  /** Starts what is due: init containers one at a time, in order, then every app container. */
  private async startDueContainers(p: Obj, rt: PodRt): Promise<void> {
    const specs = [
      ...((p.spec.initContainers ?? []) as Obj[]).map((c) => ({ c, init: true })),
      ...((p.spec.containers ?? []) as Obj[]).map((c) => ({ c, init: false })),
    ];
    const inits = specs.filter((s) => s.init);
    const succeeded = (s: { c: Obj }): boolean => rt.ctrs.get(s.c.name)!.state.terminated?.exitCode === 0;
    if (!rt.initDone && inits.every(succeeded)) rt.initDone = true;
    for (const { c, init } of specs) {
      const ctr = rt.ctrs.get(c.name)!;
      if (ctr.state.running) continue;
      if (init) {
        if (rt.initDone) continue;
        const idx = inits.findIndex((s) => s.c.name === c.name);
        if (!inits.slice(0, idx).every(succeeded)) break;
        if (ctr.state.terminated?.exitCode === 0) continue;
      } else if (!rt.initDone) continue;
      if (ctr.state.terminated && !this.shouldRestart(p, ctr)) continue;
      if (ctr.nextStart && Date.now() < ctr.nextStart) continue;
      await this.startContainer(p, rt, c, ctr);
      if (init) break;
    }
  }

  private shouldRestart(p: Obj, ctr: Ctr): boolean {
    const rp = p.spec.restartPolicy;
    const code = ctr.state.terminated?.exitCode;
    if (rp === 'Always') return true;
    if (rp === 'OnFailure') return code !== 0;
    return false;
  }

  // ------------------------------------------------------------------------------- volumes

  private volDir(rt: PodRt, name: string): string {
    return join(this.o.stateDir, 'pods', rt.uid, 'volumes', name);
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
  private prepareVolumes(p: Obj, rt: PodRt): { volume: string; message: string } | undefined {
    for (const v of (p.spec.volumes ?? []) as Obj[]) {
      const why = this.prepareVolume(p, rt, v);
      if (why !== undefined) return { volume: String(v.name), message: `MountVolume.SetUp failed for volume "${String(v.name)}" : ${why}` };
    }
    return undefined;
  }

  /** Sets one volume up on the node; answers why it cannot be. */
  private prepareVolume(p: Obj, rt: PodRt, v: Obj): string | undefined {
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
    const hp = this.hostPathDir(rt.node, source.path);
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
    const s = this.reg.store.peek('secrets', ns, name);
    return s ? Object.fromEntries(Object.entries(s.data ?? {}).map(([k, x]) => [k, Buffer.from(String(x), 'base64')])) : undefined;
  }

  /** A config map's data (and binaryData when `binary`); undefined when there is no such config map. */
  private configMapData(ns: string, name: string, binary: boolean): Record<string, Buffer> | undefined {
    const cm = this.reg.store.peek('configmaps', ns, name);
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
        const t = this.auth.issueServiceAccountToken(rt.ns, p.spec.serviceAccountName ?? 'default', {
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

  private hostSource(rt: PodRt, v: Obj): string {
    if (v.hostPath) return this.hostPathDir(rt.node, v.hostPath.path);
    return this.volDir(rt, v.name);
  }

  // ------------------------------------------------------------------------------ containers

  private resolveEnv({ p, rt, c }: ContainerRef, base: Record<string, string>, image: ImageConfig): Record<string, string> | string {
    const store = this.reg.store;
    const port = this.o.apiPort();
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
        const cm = store.peek('configmaps', rt.ns, ef.configMapRef.name);
        if (!cm) {
          if (ef.configMapRef.optional) continue;
          return `configmap "${String(ef.configMapRef.name)}" not found`;
        }
        for (const [k, v] of Object.entries(cm.data ?? {})) env[prefix + k] = String(v);
      }
      if (ef.secretRef) {
        const s = store.peek('secrets', rt.ns, ef.secretRef.name);
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
          const s = store.peek('secrets', rt.ns, vf.secretKeyRef.name);
          if (!s) {
            if (vf.secretKeyRef.optional) continue;
            return `secret "${String(vf.secretKeyRef.name)}" not found`;
          }
          const raw = s.data?.[vf.secretKeyRef.key];
          if (raw === undefined) {
            if (vf.secretKeyRef.optional) continue;
            return `couldn't find key ${String(vf.secretKeyRef.key)} in Secret ${rt.ns}/${String(vf.secretKeyRef.name)}`;
          }
          env[e.name] = Buffer.from(String(raw), 'base64').toString('utf8');
        } else if (vf.configMapKeyRef) {
          const cm = store.peek('configmaps', rt.ns, vf.configMapKeyRef.name);
          if (!cm) {
            if (vf.configMapKeyRef.optional) continue;
            return `configmap "${String(vf.configMapKeyRef.name)}" not found`;
          }
          const raw = cm.data?.[vf.configMapKeyRef.key];
          if (raw === undefined) {
            if (vf.configMapKeyRef.optional) continue;
            return `couldn't find key ${String(vf.configMapKeyRef.key)} in ConfigMap ${rt.ns}/${String(vf.configMapKeyRef.name)}`;
          }
          env[e.name] = String(raw);
        } else if (vf.resourceFieldRef) {
          const r = vf.resourceFieldRef as Obj;
          const target = ((p.spec.containers ?? []) as Obj[]).find((x) => x.name === (r.containerName || c.name)) ?? c;
          const [kind, res] = String(r.resource).split('.') as [string, string];
          const node = store.peek('nodes', undefined, rt.node);
          const raw = target.resources?.[kind]?.[res] ?? node?.status?.allocatable?.[res] ?? '0';
          const div = parseQuantity(r.divisor ?? '1') || 1;
          env[e.name] = String(Math.ceil(parseQuantity(raw) / div));
        }
      } else {
        env[e.name] = expandVars(String(e.value ?? ''), env);
      }
    }
    return env;
  }

  private async startContainer(p: Obj, rt: PodRt, c: Obj, ctr: Ctr): Promise<void> {
    const ref: ContainerRef = { p, rt, c, ctr };
    const podObj = { ...p, kind: 'Pod', apiVersion: 'v1' };
    const fieldPath = `spec.${ctr.init ? 'initContainers' : 'containers'}{${String(c.name)}}`;
    const ev: EventFn = (type, reason, msg) =>
      this.rec.record({ ...podObj, fieldPath }, { type, reason, message: msg, component: 'kubelet', host: rt.node });
    if (this.pullBlocked(ctr, String(c.image), ev)) return;
    if (!validImageReference(String(c.image))) {
      const msg = `Failed to apply default image tag "${String(c.image)}": couldn't parse image name "${String(c.image)}": invalid reference format${/[A-Z]/.test(String(c.image)) ? `: repository name (library/${String(c.image)}) must be lowercase` : ''}`;
      ctr.state = { waiting: { reason: 'InvalidImageName', message: msg } };
      ev('Warning', 'InspectFailed', msg);
      ev('Warning', 'Failed', 'Error: InvalidImageName');
      ctr.nextStart = Date.now() + 5000;
      return;
    }
    const source = this.containerSource(String(c.image));
    if (!source) return; // looking the image up; the kubelet is kicked when the answer is in
    if (source.kind === 'missing') {
      this.pullFailed(ctr, String(c.image), ev, source.message);
      return;
    }
    ctr.imageID = source.kind === 'image' ? `sha256:${source.image.id}` : undefined;
    const plan = this.planFor(p, c, source);
    if (typeof plan === 'string') {
      this.notCreated(ctr, 'CreateContainerError', plan, ev);
      return;
    }
    const env = this.resolveEnv(ref, plan.baseEnv, plan.config);
    if (typeof env === 'string') {
      this.notCreated(ctr, 'CreateContainerConfigError', env, ev);
      return;
    }
    const image = plan.config;
    // $(VAR) in the pod's command and args expands from the container's env; the image's do not
    const own = (xs: string[] | undefined): string[] | undefined => xs?.map((x) => expandVars(x, env));
    const argv = [
      ...(own(c.command as string[] | undefined) ?? image.entrypoint ?? []),
      ...(own(c.args as string[] | undefined) ?? (c.command ? [] : (image.cmd ?? []))),
    ];
    const restarted = ctr.state.terminated !== undefined;
    if (restarted) {
      ctr.lastState = { terminated: ctr.state.terminated };
      ctr.restartCount++;
    }
    const started = now();
    const wd = (c.workingDir as string | undefined) ?? image.workingDir ?? '/';
    const layout: CommandLayout = { mounts: this.mountsOf(p, rt, c), wd, argv, pathVar: env.PATH ?? DEFAULT_PATH };
    const script = plan.root ? this.imageScript(ref, plan.root, layout) : this.processScript(ref, layout);
    if (typeof script === 'string') {
      this.notCreated(ctr, 'CreateContainerError', script, ev);
      return;
    }
    if (!script) {
      const msg = `failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "${argv[0] ?? ''}": executable file not found in $PATH: unknown`;
      ctr.state = {
        terminated: {
          exitCode: 128,
          reason: 'StartError',
          message: msg,
          startedAt: '1970-01-01T00:00:00Z',
          finishedAt: started,
          containerID: `containerd://${ctr.containerID}`,
        },
      };
      ev('Warning', 'Failed', `Error: ${msg}`);
      this.afterExit(p, rt, ctr);
      return;
    }
    ev('Normal', 'Pulled', `Container image "${String(c.image)}" already present on machine`);
    this.launch(ref, { env, script, started, ev });
  }

  /**
   * The image manager before a pull: during the pull back-off the container waits in
   * ImagePullBackOff; past it, a pull of an image that is missing (or has transient failures
   * left) fails with ErrImagePull. True when the container cannot start now.
   */
  private pullBlocked(ctr: Ctr, image: string, ev: EventFn): boolean {
    if (ctr.pullBackoffUntil && Date.now() < ctr.pullBackoffUntil) {
      ctr.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } };
      ev('Normal', 'BackOff', `Back-off pulling image "${image}"`);
      ev('Warning', 'Failed', 'Error: ImagePullBackOff');
      this.retryAt(ctr, ctr.pullBackoffUntil);
      return true;
    }
    if (this.o.missingImages.has(image)) {
      this.pullFailed(ctr, image, ev);
      return true;
    }
    const fault = this.o.pullFaults.get(image);
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      this.pullFailed(ctr, image, ev, fault.detail ?? transientPullError(image));
      return true;
    }
    if (ctr.pullAttempts > 0 && ctr.pullBackoffUntil) {
      ctr.pullBackoffUntil = undefined;
      ev('Normal', 'Pulling', `Pulling image "${image}"`);
      ev('Normal', 'Pulled', `Successfully pulled image "${image}" in 1.2s (1.2s including waiting). Image size: 0 bytes.`);
    }
    return false;
  }

  /** A failed pull: ErrImagePull with the registry's error, and a back-off (10 s doubling to 5 min) before the next pull. */
  private pullFailed(ctr: Ctr, image: string, ev: EventFn, detail?: string): void {
    ctr.pullAttempts++;
    const backoff = Math.min(this.o.restartBackoffBaseMs * 2 ** (ctr.pullAttempts - 1), 300_000);
    ctr.pullBackoffUntil = Date.now() + backoff;
    const msg = detail
      ? `Failed to pull image "${image}": ${detail}`
      : `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": not found`;
    ctr.state = { waiting: { reason: 'ErrImagePull', message: msg } };
    ev('Normal', 'Pulling', `Pulling image "${image}"`);
    ev('Warning', 'Failed', msg);
    ev('Warning', 'Failed', 'Error: ErrImagePull');
    this.retryAt(ctr, ctr.pullBackoffUntil);
  }

  /** The pod worker's next sync of a waiting container: within a second (to report the back-off), and when it ends. */
  private retryAt(ctr: Ctr, until: number): void {
    const now = Date.now();
    ctr.nextStart = until > now ? Math.min(now + Math.ceil((until - now) / 2), now + 1000) : now;
    setTimeout(() => this.kick(), ctr.nextStart - now + 5).unref?.();
    if (until > ctr.nextStart) setTimeout(() => this.kick(), until - now + 5).unref?.();
  }

  /** The container could not be created (bad env reference, unknown user): waiting, retried in a second. */
  private notCreated(ctr: Ctr, reason: string, message: string, ev: EventFn): void {
    ctr.state = { waiting: { reason, message } };
    ev('Warning', 'Failed', `Error: ${message}`);
    ctr.nextStart = Date.now() + 1000;
    setTimeout(() => this.kick(), 1000).unref?.();
  }

  /**
   * Where a container's file system comes from: with containerImages, the image's root when
   * buildah's storage has it, else the `images` option's host-process configuration, else the
   * image is missing. Without containerImages, always a host process. Undefined while looking.
   */
  private containerSource(ref: string): ContainerSource | undefined {
    const configured = this.o.images[ref];
    if (!this.containerImages) return { kind: 'process', config: configured ?? {} };
    const found = this.containerImages.lookup(ref);
    if (!found) return undefined;
    if (found.kind === 'ready') return { kind: 'image', image: found.image, root: found.root };
    if (configured) return { kind: 'process', config: configured };
    return found.kind === 'failed' ? { kind: 'missing', message: found.message } : { kind: 'missing' };
  }

  /** Image config, base environment and (image mode) the root and user; or why it cannot be created. */
  private planFor(p: Obj, c: Obj, source: Exclude<ContainerSource, { kind: 'missing' }>): Plan | string {
    if (source.kind === 'process') {
      return {
        config: source.config,
        baseEnv: { PATH: `${dirname(process.execPath)}${delimiter}${DEFAULT_PATH}`, HOSTNAME: p.metadata.name, HOME: '/root' },
      };
    }
    const view = new RootView(source.root);
    const sc = { ...((p.spec.securityContext ?? {}) as Obj), ...((c.securityContext ?? {}) as Obj) };
    const user = lookupUser(view, effectiveUser(source.image.user, { runAsUser: sc.runAsUser, runAsGroup: sc.runAsGroup }));
    if (typeof user === 'string') return user;
    return {
      config: source.image,
      baseEnv: { PATH: DEFAULT_PATH, HOSTNAME: p.metadata.name, HOME: user.home ?? '/' },
      root: { dir: source.root, user },
    };
  }

  /** The container's volume mounts as host sources and container paths. */
  private mountsOf(p: Obj, rt: PodRt, c: Obj): Mount[] {
    return ((c.volumeMounts ?? []) as Obj[])
      .map((m) => {
        const v = ((p.spec.volumes ?? []) as Obj[]).find((x) => x.name === m.name)!;
        let src = this.hostSource(rt, v);
        if (m.subPath) src = join(src, m.subPath);
        return { src, dst: m.mountPath as string, ro: !!m.readOnly || !!v.secret || !!v.configMap || !!v.projected || !!v.downwardAPI };
      })
      .sort((a, b) => a.dst.split('/').length - b.dst.split('/').length);
  }

  private instanceDir(rt: PodRt, c: Obj, ctr: Ctr): string {
    return join(this.o.stateDir, 'pods', rt.uid, 'rootfs', `${String(c.name)}-${ctr.restartCount}`);
  }

  /**
   * Host-process mode: the host's file system with the volumes bind-mounted and private
   * scratch directories. Returns the script and the command it runs ("$@"), or undefined when
   * the executable is not on the host's PATH.
   */
  private processScript({ rt, c, ctr }: ContainerRef, { mounts, wd, argv, pathVar }: CommandLayout): ContainerScript | undefined {
    const resolved = argv[0] ? resolveExe(argv[0], pathVar) : undefined;
    if (!resolved) return undefined;
    const lines: string[] = [];
    // A container starts from its image's file system, not the host's: it gets fresh, private,
    // empty copies of the writable scratch directories (per container instance, as a restarted
    // container gets a new one). Volume mounts below such a directory are mounted into its copy
    // first, and the copies go on last, recursively, so that no bind source (the state dir may
    // itself live under /tmp) is hidden before it is used.
    const under = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
    const priv = this.o.privateDirs.map((d) => {
      const src = join(this.instanceDir(rt, c, ctr), d);
      mkdirSync(src, { recursive: true });
      if (d === '/tmp' || d === '/var/tmp') chmodSync(src, 0o1777);
      return { dir: d, src };
    });
    const bind = (src: string, dst: string, ro: boolean): void => {
      let isFile = false;
      try {
        isFile = statSync(src).isFile();
      } catch {
        mkdirSync(src, { recursive: true });
      }
      if (isFile) lines.push(`[ -e ${q(dst)} ] || { mkdir -p ${q(dirname(dst))}; : > ${q(dst)}; }`);
      else lines.push(`mkdir -p ${q(dst)}`);
      lines.push(`mount --bind ${q(src)} ${q(dst)}`);
      if (ro) lines.push(`mount -o remount,bind,ro ${q(dst)}`);
    };
    for (const m of mounts) {
      const p0 = priv.find((x) => under(m.dst, x.dir));
      bind(m.src, p0 ? join(p0.src, m.dst.slice(p0.dir.length)) : m.dst, m.ro);
    }
    // copies whose source lies under another private directory go first
    const hiddenLater = (a: { src: string }): number => (priv.some((x) => x.src !== a.src && under(a.src, x.dir)) ? 0 : 1);
    priv.sort((a, b) => hiddenLater(a) - hiddenLater(b));
    for (const x of priv) lines.push(`mkdir -p ${q(x.dir)}`, `mount --rbind ${q(x.src)} ${q(x.dir)}`);
    lines.push(`mkdir -p ${q(wd)} && cd ${q(wd)}`);
    return { lines, command: [resolved, ...argv.slice(1)] };
  }

  /**
   * Image mode: the instance's own writable layer over the image's root, the volumes inside
   * it, then chroot, working dir and user. Undefined when the executable is not in the image
   * (or its volumes) on the container's PATH; a message when the root cannot be assembled.
   */
  private imageScript(
    { p, rt, c, ctr }: ContainerRef,
    root: ImageRoot,
    { mounts, wd, argv, pathVar }: CommandLayout,
  ): ContainerScript | string | undefined {
    for (const m of mounts) {
      try {
        statSync(m.src);
      } catch {
        mkdirSync(m.src, { recursive: true });
      }
    }
    const podDir = join(this.o.stateDir, 'pods', rt.uid);
    mkdirSync(podDir, { recursive: true });
    writeFileSync(join(podDir, 'etc-hosts'), hostsFile(p.metadata.name));
    writeFileSync(join(podDir, 'etc-hostname'), `${String(p.metadata.name)}\n`);
    const files = [
      { dst: '/etc/hosts', src: join(podDir, 'etc-hosts') },
      { dst: '/etc/hostname', src: join(podDir, 'etc-hostname') },
    ];
    if (existsSync('/etc/resolv.conf')) files.push({ dst: '/etc/resolv.conf', src: '/etc/resolv.conf' });
    const view = new RootView(root.dir);
    try {
      const { lines, merged } = instanceRootLines(this.tools, { view, dir: this.instanceDir(rt, c, ctr), files, mounts, workingDir: wd });
      if (!argv[0] || !view.findExecutable(argv[0], pathVar, wd)) return undefined;
      return { lines, command: enterRootArgs(this.tools, { merged, workingDir: wd, user: root.user }, argv), pid1: true };
    } catch (e) {
      return `failed to prepare the container's root file system: ${(e as Error).message}`;
    }
  }

  /**
   * Runs the container: PID 1 of new mount and PID namespaces is a shell that makes the mounts,
   * then runs the command and forwards termination signals to it, as an init such as tini does.
   */
  private launch(
    { p, rt, c, ctr }: ContainerRef,
    run: { env: Record<string, string>; script: ContainerScript; started: string; ev: EventFn },
  ): void {
    const { env, started, ev } = run;
    const logDir = join(this.o.logDir, `${rt.ns}_${rt.name}_${rt.uid}`, c.name);
    mkdirSync(logDir, { recursive: true });
    const out = createWriteStream(join(logDir, `${ctr.restartCount}.log`), { flags: 'a' });
    out.on('error', () => {
      /* the state dir went away (cluster stopped) */
    });
    ctr.out = out;
    const logLine = (line: string): void => {
      if (!out.writableEnded) out.write(line);
    };
    const { cmd, args } = this.spawnArgs(run.script);
    const proc = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    ctr.proc = proc;
    ctr.pid = proc.pid;
    ctr.startedAt = started;
    ctr.oom = false;
    ctr.killedBy = undefined;
    const memLimit = c.resources?.limits?.memory;
    ctr.memoryLimit = memLimit !== undefined ? parseQuantity(memLimit) : undefined;
    ctr.state = { running: { startedAt: started } };
    ev('Normal', 'Created', `Created container ${String(c.name)}`);
    ev('Normal', 'Started', `Started container ${String(c.name)}`);
    pumpLines(proc.stdout!, 'stdout', logLine);
    pumpLines(proc.stderr!, 'stderr', logLine);
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      const finish = (): void => {
        out.end(() => {
          const sig = signal ? ((osConstants.signals as Record<string, number>)[signal] ?? 9) : 0;
          const exitCode = code ?? 128 + sig;
          let reason = exitCode === 0 ? 'Completed' : 'Error';
          if (ctr.oom) reason = 'OOMKilled';
          const message =
            exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError'
              ? logTail(join(logDir, `${ctr.restartCount}.log`))
              : undefined;
          ctr.state = {
            terminated: {
              exitCode,
              reason,
              ...(message ? { message } : {}),
              startedAt: started,
              finishedAt: now(),
              containerID: `containerd://${ctr.containerID}`,
            },
          };
          ctr.proc = undefined;
          this.afterExit(p, rt, ctr);
          this.kick();
        });
      };
      // give the pipes a moment to drain; descendants holding them open must not block the status
      let done = false;
      const once = (): void => {
        if (!done) {
          done = true;
          finish();
        }
      };
      proc.stdout?.once('end', () => {
        if (proc.stderr?.readableEnded) once();
      });
      proc.stderr?.once('end', () => {
        if (proc.stdout?.readableEnded) once();
      });
      if (proc.stdout?.readableEnded && proc.stderr?.readableEnded) once();
      setTimeout(once, 300).unref?.();
    };
    proc.on('exit', onExit);
    proc.on('error', (e) => {
      logLine(`${new Date().toISOString()} stderr F ${e.message}\n`);
      onExit(128, null);
    });
  }

  /** The process to spawn for a container script (see launch()). */
  private spawnArgs(script: ContainerScript): { cmd: string; args: string[] } {
    // as PID 1 of its namespace the shell would ignore SIGTERM without a handler: until the
    // command runs, a termination request ends the container (exit 143)
    const head = this.o.mountNamespaces ? ["trap 'exit 143' TERM", "trap 'exit 130' INT", 'set -e'] : ['set -e'];
    const lines = [...head, ...script.lines];
    const t = this.tools;
    const namespaces = podNamespaceArgs(t.unshare, t.sh);
    if (script.pid1) {
      // As in a real container, the image's entrypoint is PID 1: it gets SIGTERM only if it
      // handles it (an init such as tini does), else it is SIGKILLed after the grace period.
      lines.push('set +e', 'exec "$@"');
      return { cmd: t.setpriv, args: [...namespaces, lines.join('\n'), 'sh', ...script.command] };
    }
    if (this.o.mountNamespaces) {
      // The pod's processes live in their own PID namespace: when it ends (pod killed, or this
      // process dying and taking the namespace's init with it) every process in it dies too.
      // The shell stays as PID 1 and forwards termination signals, as an init such as tini does,
      // so the command itself gets SIGTERM's default action.
      lines.push(
        'set +e',
        '"$@" &',
        'child=$!',
        "trap 'kill -TERM $child 2>/dev/null' TERM",
        "trap 'kill -INT $child 2>/dev/null' INT",
        "trap 'kill -HUP $child 2>/dev/null' HUP",
        'while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null || break; done',
        'exit $rc',
      );
      return { cmd: t.setpriv, args: [...namespaces, lines.join('\n'), 'sh', ...script.command] };
    }
    lines.push('set +e', 'exec "$@"');
    return { cmd: t.sh, args: ['-c', lines.join('\n').replace(/^mount .*$/gm, ':'), 'sh', ...script.command] };
  }

  private afterExit(p: Obj, rt: PodRt, ctr: Ctr): void {
    const code = ctr.state.terminated?.exitCode;
    const rp = p.spec.restartPolicy;
    const willRestart = !rt.gone && !rt.evicted && !rt.termSent && (rp === 'Always' || (rp === 'OnFailure' && code !== 0));
    if (willRestart) {
      const backoff = Math.min(this.o.restartBackoffBaseMs * 2 ** ctr.restartCount, 300_000);
      ctr.nextStart = Date.now() + backoff;
      setTimeout(() => this.kick(), backoff + 5).unref?.();
    }
  }

  // -------------------------------------------------------------------------------- status

  /** Succeeded or Failed once every app container is done for good; Running once one runs; else Pending. */
  private podPhase(p: Obj, rt: PodRt, terminating: boolean): string {
    const all = [...rt.ctrs.values()];
    const mainCtrs = all.filter((c) => !c.init);
    const anyRunning = all.some((c) => c.state.running);
    const allMainTerminated = mainCtrs.every((c) => c.state.terminated);
    const initFailed = all.some(
      (c) => c.init && c.state.terminated && c.state.terminated.exitCode !== 0 && p.spec.restartPolicy === 'Never',
    );
    let phase = 'Pending';
    if (rt.evicted && !anyRunning) phase = 'Failed';
    else if (initFailed) phase = 'Failed';
    else if (rt.initDone && mainCtrs.some((c) => c.state.running || c.state.terminated)) {
      phase = 'Running';
      const restartable = !terminating && mainCtrs.some((c) => c.nextStart && c.state.terminated && this.shouldRestart(p, c));
      if (allMainTerminated && !restartable) phase = mainCtrs.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
    }
    if (terminating && !anyRunning && phase !== 'Succeeded') phase = 'Failed';
    if (terminating && !anyRunning && mainCtrs.every((c) => c.state.terminated?.exitCode === 0) && mainCtrs.length) phase = 'Succeeded';
    return phase;
  }

  private async writeStatus(p: Obj, rt: PodRt, terminating: boolean): Promise<void> {
    if (rt.gone) return;
    const cur = this.reg.store.peek('pods', rt.ns, rt.name);
    if (!cur || cur.metadata.uid !== rt.uid) return;
    const st = clone((cur.status ?? {}) as Obj);
    const showBackOff = !terminating && !rt.evicted;
    const inits = ((p.spec.initContainers ?? []) as Obj[]).map((s) => containerStatus(rt, rt.ctrs.get(s.name)!, s, showBackOff));
    const mains = ((p.spec.containers ?? []) as Obj[]).map((s) => containerStatus(rt, rt.ctrs.get(s.name)!, s, showBackOff));
    const phase = this.podPhase(p, rt, terminating);
    st.phase = phase;
    st.hostIP = '127.0.0.1';
    st.hostIPs = [{ ip: '127.0.0.1' }];
    if (rt.volumesReady) {
      st.podIP = '127.0.0.1';
      st.podIPs = [{ ip: '127.0.0.1' }];
    }
    st.startTime = rt.startTime;
    if (inits.length) st.initContainerStatuses = inits;
    st.containerStatuses = mains;
    if (rt.evicted) {
      st.reason = rt.evicted.reason === 'DeadlineExceeded' ? 'DeadlineExceeded' : 'Evicted';
      st.message = rt.evicted.message;
    }
    st.conditions = podConditions((st.conditions ?? []) as Obj[], rt, phase, { inits, mains });
    this.commitStatus(cur, st, phase);
  }

  /** Stores a changed status; a finished pod whose deletion was requested (and has no finalizers) goes. */
  private commitStatus(cur: Obj, st: Obj, phase: string): void {
    const finished = phase === 'Succeeded' || phase === 'Failed';
    const remove = (o: Obj): void => {
      if (finished && o.metadata.deletionTimestamp && !(o.metadata.finalizers ?? []).length) {
        this.reg.store.remove('pods', o.metadata.namespace, o.metadata.name);
        this.reg.onChange();
      }
    };
    if (JSON.stringify(st) === JSON.stringify(cur.status)) {
      remove(cur);
      return;
    }
    const next = clone(cur);
    next.status = st;
    this.reg.store.update('pods', next);
    this.reg.onChange();
    remove(next);
  }
}

/** A container's status as the kubelet reports it; one waiting to restart shows CrashLoopBackOff when `showBackOff`. */
function containerStatus(rt: PodRt, c: Ctr, spec: Obj, showBackOff: boolean): Obj {
  let state = c.state;
  let lastState = c.lastState;
  if (state.terminated && c.nextStart && Date.now() < c.nextStart && showBackOff) {
    lastState = { terminated: state.terminated };
    state = {
      waiting: {
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round((c.nextStart - Date.parse(state.terminated.finishedAt)) / 1000)}s restarting failed container=${c.name} pod=${rt.name}_${rt.ns}(${rt.uid})`,
      },
    };
  }
  return {
    name: c.name,
    state,
    lastState,
    ready: !!state.running && !c.init,
    restartCount: c.restartCount,
    image: spec.image,
    imageID: state.waiting ? '' : (c.imageID ?? `docker.io/library/${String(spec.image)}@sha256:${'0'.repeat(64)}`),
    ...(state.waiting ? {} : { containerID: `containerd://${c.containerID}` }),
    started: !!state.running,
  };
}

const CONDITION_ORDER = ['DisruptionTarget', 'PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];

/** The kubelet's pod conditions over the existing ones, in the kubelet's order. */
function podConditions(existing: Obj[], rt: PodRt, phase: string, statuses: { inits: Obj[]; mains: Obj[] }): Obj[] {
  const { inits, mains } = statuses;
  const t = now();
  const ready = mains.every((c) => c.ready);
  let conds = existing;
  const set = (type: string, ok: boolean, reason?: string, message?: string): void => {
    conds = setCondition(conds, {
      type,
      status: ok ? 'True' : 'False',
      lastProbeTime: null,
      lastTransitionTime: t,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
  };
  const notReady = mains.filter((c) => !c.ready).map((c) => c.name);
  set('PodReadyToStartContainers', rt.volumesReady && !(phase !== 'Pending' && phase !== 'Running'));
  set(
    'Initialized',
    rt.initDone,
    rt.initDone ? undefined : 'ContainersNotInitialized',
    rt.initDone
      ? undefined
      : `containers with incomplete status: [${inits
          .filter((c) => !(c.state.terminated?.exitCode === 0))
          .map((c) => c.name)
          .join(' ')}]`,
  );
  const readyReason = phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady';
  const unready = ready || readyReason === 'PodCompleted' ? undefined : `containers with unready status: [${notReady.join(' ')}]`;
  set('Ready', ready, ready ? undefined : readyReason, unready);
  set('ContainersReady', ready, ready ? undefined : readyReason, unready);
  conds.sort((a, b) => CONDITION_ORDER.indexOf(a.type) - CONDITION_ORDER.indexOf(b.type));
  return conds;
}

/** A registry's transient error as containerd reports it (a 503 from the registry). */
function transientPullError(image: string): string {
  return `rpc error: code = Unknown desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": unexpected status from HEAD request to https://registry.example/v2/manifests/latest: 503 Service Unavailable`;
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

/** The grammar of a docker image reference (domain/path:tag@digest), lower-case repository. */
export function validImageReference(ref: string): boolean {
  const m =
    /^((?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?$/.exec(
      ref,
    );
  return !!m;
}

function resolveExe(exe: string, path: string): string | undefined {
  const ok = (f: string): boolean => {
    try {
      accessSync(f, constants.X_OK);
      return statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (exe.includes('/')) return ok(exe) ? exe : undefined;
  for (const d of path.split(delimiter)) {
    const f = join(d, exe);
    if (ok(f)) return f;
  }
  return undefined;
}

/** Writes a stream to the container log, one CRI log line per line of output. */
/**
 * containerd's `max_container_log_line_size` (16 KiB, its default, as on EKS and GKE): a longer
 * line is written as partial (`P`) entries of at most this many bytes and a final (`F`) one. The
 * kubelet's `tailLines` counts entries, so the last entry of a long line is its end.
 */
export const MAX_LOG_LINE_BYTES = 16 * 1024;

/** Where to cut `buf` (≤ max bytes), not inside a UTF-8 sequence (the log file is written as text). */
function cutAt(buf: Buffer, max: number): number {
  let i = Math.min(max, buf.length);
  while (i > 0 && i < buf.length && (buf[i]! & 0xc0) === 0x80) i--;
  return i > 0 ? i : Math.min(max, buf.length);
}

/** Writes a stream's output as CRI log entries: one per line, long lines split as containerd splits them. */
function pumpLines(stream: NodeJS.ReadableStream, name: string, logLine: (line: string) => void): void {
  let buf = Buffer.alloc(0);
  const entry = (tag: 'P' | 'F', bytes: Buffer): void => logLine(`${new Date().toISOString()} ${name} ${tag} ${bytes.toString('utf8')}\n`);
  stream.on('data', (d: Buffer | string) => {
    buf = Buffer.concat([buf, typeof d === 'string' ? Buffer.from(d) : d]);
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl >= 0 && nl <= MAX_LOG_LINE_BYTES) {
        entry('F', buf.subarray(0, nl));
        buf = buf.subarray(nl + 1);
      } else if (buf.length > MAX_LOG_LINE_BYTES) {
        const cut = cutAt(buf, MAX_LOG_LINE_BYTES);
        entry('P', buf.subarray(0, cut));
        buf = buf.subarray(cut);
      } else return;
    }
  });
  stream.on('end', () => {
    if (buf.length > 0) entry('F', buf);
    buf = Buffer.alloc(0);
  });
}

/** The tail of a container log (80 lines, 2048 bytes), which the kubelet uses as a FallbackToLogsOnError termination message. */
function logTail(file: string): string | undefined {
  try {
    // the last 80 entries, a partial (P) entry joined to the next without a newline
    const text = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(-80)
      .map((l) => /^\S+ (?:stdout|stderr) ([FP]) (.*)$/s.exec(l))
      .map((m) => (m ? `${m[2]!}${m[1] === 'F' ? '\n' : ''}` : '\n'))
      .join('')
      .replace(/\n$/, '');
    return Buffer.from(text).subarray(-2048).toString('utf8');
  } catch {
    return undefined;
  }
}

/** Resident memory (bytes) of every process, summed by a key from its pid and /proc/<pid>/stat fields after the name. */
function residentMemoryBy(keyOf: (pid: string, stat: string[]) => string | undefined): Map<string, number> {
  const rss = new Map<string, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return rss;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = keyOf(e, f);
      if (key) rss.set(key, (rss.get(key) ?? 0) + Number(f[21]) * 4096);
    } catch {
      /* exited */
    }
  }
  return rss;
}

/** The namespace a process is in (`pid`) or gives its children (`pid_for_children`), e.g. "pid:[4026532]". */
function nsLink(pid: string, which: 'pid' | 'pid_for_children'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${which}`);
  } catch {
    return undefined;
  }
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}
