/**
 * The kubelet's eviction manager for local storage (measured every evictionIntervalMs; pods over
 * a limit are evicted with the kubelet's message) and the kernel's OOM killer for containers over
 * limits.memory.
 */
import { join } from 'node:path';
import type { Recorder } from './events.js';
import { killGroup, nsLink, residentMemoryBy } from './hostProcesses.js';
import type { Ctr, PodRt } from './kubeletTypes.js';
import { diskUsage, storageEviction, type PodStorageUsage } from './storage.js';
import type { Obj, Store } from './store.js';

export interface EvictionDeps {
  pods: () => Iterable<PodRt>;
  store: Store;
  rec: Recorder;
  stateDir: string;
  logDir: string;
  mountNamespaces: boolean;
  enforceMemoryLimits: boolean;
  volDir: (rt: PodRt, name: string) => string;
  kick: () => void;
}

export class EvictionManager {
  constructor(private d: EvictionDeps) {}

  /**
   * The eviction manager's local storage limits (see storage.ts): each pod with a running
   * container is measured, and one over a limit is evicted with the kubelet's message.
   */
  enforceStorage(): void {
    for (const rt of this.d.pods()) {
      if (rt.gone || rt.evicted || rt.termSent || ![...rt.ctrs.values()].some((c) => c.state.running)) continue;
      const p = this.d.store.peek('pods', rt.ns, rt.name);
      if (!p || p.metadata.uid !== rt.uid || p.metadata.deletionTimestamp) continue;
      const message = storageEviction(p, this.storageUsage(p, rt));
      if (message) this.evictForStorage(p, rt, message);
    }
  }

  /** A pod's local storage use: containers' writable layers and logs, emptyDir volumes, /etc/hosts. */
  private storageUsage(p: Obj, rt: PodRt): PodStorageUsage {
    const podDir = join(this.d.stateDir, 'pods', rt.uid);
    const logs = join(this.d.logDir, `${rt.ns}_${rt.name}_${rt.uid}`);
    const containers = new Map<string, number>();
    for (const c of rt.ctrs.values()) {
      if (c.init) continue;
      // an image instance's root holds its writable layer (upper); merged and work are the overlay's
      const layer = diskUsage(join(podDir, 'rootfs', `${c.name}-${c.restartCount}`), ['merged', 'work']);
      containers.set(c.name, layer + diskUsage(join(logs, c.name)));
    }
    const emptyDirs = new Map<string, number>();
    for (const v of (p.spec.volumes ?? []) as Obj[])
      if (v.emptyDir && v.emptyDir.medium !== 'Memory') emptyDirs.set(v.name, diskUsage(this.d.volDir(rt, v.name)));
    return { containers, emptyDirs, other: diskUsage(join(podDir, 'etc-hosts')) };
  }

  /** The eviction manager's own eviction: grace period 1 s, phase Failed, reason Evicted, no DisruptionTarget. */
  private evictForStorage(p: Obj, rt: PodRt, message: string): void {
    rt.evicted = { reason: 'Evicted', message };
    this.d.rec.record(
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
    this.d.kick();
  }

  /**
   * The kernel's OOM killer for containers with a memory limit: when the resident memory of a
   * container's processes (its PID namespace; its process group without namespaces) exceeds
   * limits.memory, the container is killed and reported as OOMKilled (exit code 137). An init
   * such as tini puts its child in a process group of its own, so the group alone is not enough.
   */
  enforceMemory(): void {
    if (!this.d.enforceMemoryLimits) return;
    const limited: { c: Ctr; limit: number }[] = [];
    for (const rt of this.d.pods())
      for (const c of rt.ctrs.values()) {
        if (c.state.running && c.pid && c.memoryLimit) limited.push({ c, limit: c.memoryLimit });
      }
    if (!limited.length) return;
    const byNamespace = this.d.mountNamespaces;
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
}
