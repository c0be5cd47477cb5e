/**
 * The kubelet of every simulated node: runs each container's command as a local process in a
 * private mount namespace (unshare -m) with its volumes bind-mounted at their container paths,
 * reports container states and pod phases as a real kubelet does, and writes container logs.
 * Its volume manager, image pulls, container environment, scripts and processes, security
 * contexts, eviction manager, logs and pod status live in modules of their own.
 */
import { rmSync } from 'node:fs';
import { dirname, join, delimiter } from 'node:path';
import { now, type Registry } from './registry.js';
import { clone, type Obj } from './store.js';
import type { Recorder } from './events.js';
import type { Authenticator } from './auth.js';
import { isTerminal, unknownContainerState } from './objects.js';
import { ApiError } from './errors.js';
import { ContainerImages, type ContainerImagesOption } from './images.js';
import { RootView, effectiveUser, lookupUser, type HostTools } from './rootfs.js';
import type { ImageConfig, EventFn, ContainerSource, Plan, ContainerRef, CommandLayout, Ctr, PodRt } from './kubeletTypes.js';
import { killGroup, resolveExe } from './hostProcesses.js';
import { expandVars, resolveEnv } from './containerEnv.js';
import { VolumeManager } from './volumes.js';
import { ImagePulls, validImageReference } from './imagePulls.js';
import { ContainerScripts } from './containerScripts.js';
import { EvictionManager } from './evictionManager.js';
import { ContainerLauncher } from './containerProcess.js';
import { containerStatus, podConditions, podPhase, shouldRestart } from './podStatus.js';
import { effectiveContext, processIdentity, verifyRunAsNonRoot } from './securityContext.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The volume manager's retry back-off after a failed mount (kubelet: 500 ms, doubling to 2m2s). */
const MOUNT_RETRY_FIRST_MS = 500;
const MOUNT_RETRY_MAX_MS = 122_000;

export type { ImageConfig } from './kubeletTypes.js';
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

/** Absolute paths of the host tools the kubelet runs (a container's PATH is not the host's). */
function hostTools(): HostTools & { setpriv: string; sh: string; perl: string } {
  const find = (name: string): string => resolveExe(name, DEFAULT_PATH) ?? name;
  return {
    mount: find('mount'),
    mkdir: find('mkdir'),
    unshare: find('unshare'),
    setpriv: find('setpriv'),
    sh: find('sh'),
    perl: find('perl'),
  };
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
  private readonly volumes: VolumeManager;
  private readonly pulls: ImagePulls;
  private readonly scripts: ContainerScripts;
  private readonly eviction: EvictionManager;
  private readonly launcher: ContainerLauncher;
  constructor(
    private reg: Registry,
    private rec: Recorder,
    auth: Authenticator,
    private o: KubeletOptions,
  ) {
    this.pulls = new ImagePulls(o, () => this.kick());
    this.scripts = new ContainerScripts({
      tools: this.tools,
      stateDir: o.stateDir,
      privateDirs: o.privateDirs,
      mountNamespaces: o.mountNamespaces,
    });
    this.volumes = new VolumeManager({ store: reg.store, auth, stateDir: o.stateDir, hostPathDir: (n, p) => this.hostPathDir(n, p) });
    this.launcher = new ContainerLauncher({
      logDir: o.logDir,
      restartBackoffBaseMs: o.restartBackoffBaseMs,
      spawnArgs: (script) => this.scripts.spawnArgs(script),
      kick: () => this.kick(),
    });
    this.eviction = new EvictionManager({
      ...o,
      pods: () => this.pods.values(),
      store: reg.store,
      rec,
      volDir: (rt, name) => this.volumes.volDir(rt, name),
      kick: () => this.kick(),
    });
    if (o.containerImages) this.containerImages = new ContainerImages(o.containerImages, () => this.kick());
    // periodic resync, for grace periods and deadlines
    this.tick = setInterval(() => {
      this.eviction.enforceMemory();
      this.kick();
    }, 250);
    this.tick.unref?.();
    if (o.evictionIntervalMs > 0) {
      this.storageTick = setInterval(() => this.eviction.enforceStorage(), o.evictionIntervalMs);
      this.storageTick.unref?.();
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
    const err = this.volumes.prepareVolumes(p, rt);
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
      if (ctr.state.terminated && !shouldRestart(p, ctr)) continue;
      if (ctr.nextStart && Date.now() < ctr.nextStart) continue;
      await this.startContainer(p, rt, c, ctr);
      if (init) break;
    }
  }

  // ------------------------------------------------------------------------------ containers

  private async startContainer(p: Obj, rt: PodRt, c: Obj, ctr: Ctr): Promise<void> {
    const ref: ContainerRef = { p, rt, c, ctr };
    const podObj = { ...p, kind: 'Pod', apiVersion: 'v1' };
    const fieldPath = `spec.${ctr.init ? 'initContainers' : 'containers'}{${String(c.name)}}`;
    const ev: EventFn = (type, reason, msg) =>
      this.rec.record({ ...podObj, fieldPath }, { type, reason, message: msg, component: 'kubelet', host: rt.node });
    if (this.pulls.blocked(ctr, String(c.image), ev)) return;
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
      this.pulls.failed(ctr, String(c.image), ev, source.message);
      return;
    }
    ctr.imageID = source.kind === 'image' ? `sha256:${source.image.id}` : undefined;
    // a host process runs as root, as an image without a User does
    const nonRoot = verifyRunAsNonRoot(p, c, source.kind === 'image' ? source.image.user : '');
    if (nonRoot) {
      this.notCreated(ctr, 'CreateContainerConfigError', nonRoot, ev);
      return;
    }
    const plan = this.planFor(p, c, source);
    if (typeof plan === 'string') {
      this.notCreated(ctr, 'CreateContainerError', plan, ev);
      return;
    }
    const env = resolveEnv({ store: this.reg.store, p, ns: rt.ns, c, node: rt.node, apiPort: this.o.apiPort() }, plan.baseEnv, plan.config);
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
    const layout: CommandLayout = {
      mounts: this.volumes.mountsOf(p, rt, c),
      wd,
      argv,
      pathVar: env.PATH ?? DEFAULT_PATH,
      identity: plan.identity,
      readOnlyRoot: effectiveContext(p, c).readOnlyRootFilesystem === true,
    };
    const script = plan.root ? this.scripts.imageScript(ref, plan.root, layout) : this.scripts.processScript(ref, layout);
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
      this.launcher.afterExit(p, rt, ctr);
      return;
    }
    ev('Normal', 'Pulled', `Container image "${String(c.image)}" already present on machine`);
    this.launcher.launch(ref, { env, script, started, ev });
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
    const sc = effectiveContext(p, c);
    if (source.kind === 'process') {
      const asks = sc.runAsUser !== undefined || sc.runAsGroup !== undefined;
      return {
        config: source.config,
        baseEnv: { PATH: `${dirname(process.execPath)}${delimiter}${DEFAULT_PATH}`, HOSTNAME: p.metadata.name, HOME: '/root' },
        ...(asks ? { identity: processIdentity(p, c, { uid: Number(sc.runAsUser ?? 0), gid: Number(sc.runAsGroup ?? 0) }) } : {}),
      };
    }
    const view = new RootView(source.root);
    const user = lookupUser(view, effectiveUser(source.image.user, { runAsUser: sc.runAsUser, runAsGroup: sc.runAsGroup }));
    if (typeof user === 'string') return user;
    return {
      config: source.image,
      baseEnv: { PATH: DEFAULT_PATH, HOSTNAME: p.metadata.name, HOME: user.home ?? '/' },
      root: { dir: source.root, user },
      identity: processIdentity(p, c, user),
    };
  }

  // -------------------------------------------------------------------------------- status

  private async writeStatus(p: Obj, rt: PodRt, terminating: boolean): Promise<void> {
    if (rt.gone) return;
    const cur = this.reg.store.peek('pods', rt.ns, rt.name);
    if (!cur || cur.metadata.uid !== rt.uid) return;
    const st = clone((cur.status ?? {}) as Obj);
    const showBackOff = !terminating && !rt.evicted;
    const inits = ((p.spec.initContainers ?? []) as Obj[]).map((s) => containerStatus(rt, rt.ctrs.get(s.name)!, s, showBackOff));
    const mains = ((p.spec.containers ?? []) as Obj[]).map((s) => containerStatus(rt, rt.ctrs.get(s.name)!, s, showBackOff));
    const phase = podPhase(p, rt, terminating);
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
