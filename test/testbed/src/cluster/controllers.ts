/**
 * Control-plane loops: service-account/root-CA publisher, namespace lifecycle, pod GC, garbage
 * collector, TTL-after-finished controller, and the quota controller, job controller and scheduler
 * of their own modules. Each reconciles the whole store when kicked (after any change) and on a short timer
 * (for deadlines, TTLs and back-offs).
 */
import { ApiError } from './errors.js';
import { info, now, Registry } from './registry.js';
import { RESOURCES, resKey, type ResourceInfo } from './resources.js';
import type { Obj } from './store.js';
import type { Recorder } from './events.js';
import { deleteIfPresent, isTerminal, removeFinalizer, setCondition, unknownContainerState } from './objects.js';
import { JobController } from './jobController.js';
import { Scheduler } from './scheduler.js';
import { syncQuotas } from './quotaController.js';

const POD = info('', 'pods');
const JOB = info('batch', 'jobs');
const SA = info('', 'serviceaccounts');
const CM = info('', 'configmaps');

export interface ControllerOptions {
  caPem: string;
  /** first back-off before re-creating a failed Job pod (Kubernetes: 10 s, doubling, max 6 min) */
  jobBackoffBaseMs: number;
  /** longest wait before a Job whose pod creates were refused is synced again (Kubernetes: 60 s) */
  jobApiBackoffMaxMs: number;
  /** scheduling is held for pods younger than this (fault: delay scheduling) */
  schedulingDelayMs: () => number;
  schedulingPaused: () => boolean;
  /** Jobs whose ending is never recorded, once they have a pod (faults.loseJobEndings) */
  endingLost: (job: Obj) => boolean;
}

export class Controllers {
  private timer?: NodeJS.Timeout;
  private tick?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;
  private nodeMissingSince = new Map<string, number>();
  /** nodes known to be gone for good (faults.loseNode): their pods are collected at once */
  nodesGone = new Set<string>();
  private readonly jobController: JobController;
  private readonly schedulerLoop: Scheduler;
  constructor(
    private reg: Registry,
    rec: Recorder,
    private opts: ControllerOptions,
  ) {
    this.jobController = new JobController(reg, rec, opts);
    this.schedulerLoop = new Scheduler(reg, rec, opts);
  }

  start(): void {
    this.tick = setInterval(() => this.kick(), 250);
    this.tick.unref?.();
    this.kick();
  }
  stop(): void {
    this.stopped = true;
    if (this.tick) clearInterval(this.tick);
    if (this.timer) clearTimeout(this.timer);
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, 10);
  }

  /** Resolves when no reconcile is running or pending. */
  async idle(): Promise<void> {
    while (this.running || this.timer) await new Promise((r) => setTimeout(r, 5));
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      do {
        this.again = false;
        const steps = [this.serviceAccounts, this.namespaces, this.podGC, this.gc, this.quotas, this.jobs, this.ttl, this.scheduler];
        for (const step of steps) {
          try {
            await step.call(this);
          } catch (e) {
            if (!(e instanceof ApiError && (e.code === 404 || e.code === 409))) console.error('[test-cluster] controller error', e);
          }
          if (this.stopped) return;
        }
      } while (this.again);
    } finally {
      this.running = false;
    }
  }

  // ------------------------------------------------------------- service accounts + root CA

  private async serviceAccounts(): Promise<void> {
    const store = this.reg.store;
    for (const ns of store.list('namespaces')) {
      if (ns.metadata.deletionTimestamp) continue;
      const n = ns.metadata.name as string;
      if (!store.peek('serviceaccounts', n, 'default')) {
        await this.reg.create(SA, n, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }).catch(ignoreConflict);
      }
      if (!store.peek('configmaps', n, 'kube-root-ca.crt')) {
        await this.reg
          .create(CM, n, {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: {
              name: 'kube-root-ca.crt',
              annotations: {
                'kubernetes.io/description':
                  'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.',
              },
            },
            data: { 'ca.crt': this.opts.caPem },
          })
          .catch(ignoreConflict);
      }
    }
  }

  // ---------------------------------------------------------------------------- namespaces

  private async namespaces(): Promise<void> {
    const store = this.reg.store;
    for (const ns of store.list('namespaces')) {
      if (!ns.metadata.deletionTimestamp) continue;
      const n = ns.metadata.name as string;
      let remaining = 0;
      for (const r of RESOURCES.filter((x) => x.namespaced && !x.virtual)) {
        for (const o of [...store.list(resKey(r), n)]) {
          remaining++;
          if (!o.metadata.deletionTimestamp) this.safeDelete(r, o, 'Background');
        }
      }
      if (remaining === 0 && !ns.metadata.finalizers?.length) {
        store.remove('namespaces', undefined, n);
        this.reg.onChange();
      }
    }
  }

  private safeDelete(r: ResourceInfo, o: Obj, policy: string, grace?: number): void {
    deleteIfPresent(this.reg, r, o, { policy, ...(grace !== undefined ? { grace } : {}) });
  }

  // ---------------------------------------------------------------------------------- pod GC

  /** Pods bound to a node that no longer exists are failed (DisruptionTarget/DeletionByPodGC) and deleted. */
  private async podGC(): Promise<void> {
    const store = this.reg.store;
    for (const p of store.list('pods')) {
      const node = p.spec?.nodeName as string | undefined;
      if (!node || store.peek('nodes', undefined, node)) continue;
      // PodGC waits 40 s before it trusts that a node is gone (immediately for a node lost by the fault)
      if (!this.nodeMissingSince.has(node)) this.nodeMissingSince.set(node, Date.now());
      if (!this.nodesGone.has(node) && Date.now() - this.nodeMissingSince.get(node)! < 40_000) continue;
      const pod = store.get('pods', p.metadata.namespace, p.metadata.name)!;
      if (!isTerminal(pod)) {
        pod.status = {
          ...(pod.status ?? {}),
          phase: 'Failed',
          conditions: setCondition(pod.status?.conditions, {
            type: 'DisruptionTarget',
            status: 'True',
            lastProbeTime: null,
            lastTransitionTime: now(),
            reason: 'DeletionByPodGC',
            message: 'PodGC: node no longer exists',
          }),
          containerStatuses: (pod.status?.containerStatuses ?? []).map((c: Obj) =>
            c.state?.terminated
              ? c
              : {
                  ...c,
                  ready: false,
                  started: false,
                  state: unknownContainerState(),
                },
          ),
        };
        store.update('pods', pod);
      }
      const cur = store.peek('pods', pod.metadata.namespace, pod.metadata.name)!;
      if (!cur.metadata.deletionTimestamp) this.safeDelete(POD, cur, 'Background', 0);
      const after = store.peek('pods', pod.metadata.namespace, pod.metadata.name);
      if (after && after.metadata.deletionTimestamp && !(after.metadata.finalizers ?? []).length)
        store.remove('pods', pod.metadata.namespace, pod.metadata.name);
      this.reg.onChange();
    }
  }

  // ---------------------------------------------------------------------- garbage collector

  private async gc(): Promise<void> {
    const store = this.reg.store;
    const all: { r: ResourceInfo; o: Obj }[] = [];
    for (const r of RESOURCES.filter((x) => !x.virtual)) for (const o of store.list(resKey(r))) all.push({ r, o });
    const dependents = new Map<string, { r: ResourceInfo; o: Obj }[]>();
    for (const d of all)
      for (const ref of (d.o.metadata.ownerReferences ?? []) as Obj[]) {
        const l = dependents.get(ref.uid) ?? [];
        l.push(d);
        dependents.set(ref.uid, l);
      }
    for (const { r, o } of all) {
      const m = o.metadata;
      if (!m.deletionTimestamp) continue;
      const deps = dependents.get(m.uid) ?? [];
      if ((m.finalizers ?? []).includes('orphan')) {
        for (const d of deps) {
          await this.reg.mutate({ inf: d.r, ns: d.o.metadata.namespace, name: d.o.metadata.name }, (x) => {
            const refs = (x.metadata.ownerReferences ?? []).filter((ref: Obj) => ref.uid !== m.uid);
            if (refs.length) x.metadata.ownerReferences = refs;
            else delete x.metadata.ownerReferences;
          });
        }
        await this.removeFinalizer(r, o, 'orphan');
      } else if ((m.finalizers ?? []).includes('foregroundDeletion')) {
        let blocking = 0;
        for (const d of deps) {
          const ref = (d.o.metadata.ownerReferences as Obj[]).find((x) => x.uid === m.uid);
          if (ref?.blockOwnerDeletion) blocking++;
          // as the real collector: foreground again only for a dependent with dependents of its own
          const policy = (dependents.get(d.o.metadata.uid) ?? []).length > 0 ? 'Foreground' : 'Background';
          if (!d.o.metadata.deletionTimestamp) this.safeDelete(d.r, d.o, policy);
        }
        if (blocking === 0) await this.removeFinalizer(r, o, 'foregroundDeletion');
      }
    }
    // dependents whose owners are all gone are deleted (background); dangling refs are dropped
    for (const { r, o: snap } of all) {
      const o = store.peek(resKey(r), snap.metadata.namespace, snap.metadata.name);
      if (!o || o.metadata.uid !== snap.metadata.uid) continue;
      const refs = (o.metadata.ownerReferences ?? []) as Obj[];
      if (!refs.length || o.metadata.deletionTimestamp) continue;
      const alive = refs.filter((ref) => {
        const owner = store.byUID(ref.uid);
        return (
          owner && !(owner.obj.metadata.deletionTimestamp && (owner.obj.metadata.finalizers ?? []).includes('foregroundDeletion') && false)
        );
      });
      if (alive.length === 0) this.safeDelete(r, o, 'Background');
      else if (alive.length < refs.length) {
        await this.reg.mutate({ inf: r, ns: o.metadata.namespace, name: o.metadata.name }, (x) => {
          x.metadata.ownerReferences = alive;
        });
      }
    }
  }

  private async removeFinalizer(r: ResourceInfo, o: Obj, f: string): Promise<void> {
    await removeFinalizer(this.reg, r, o, f);
  }

  private async quotas(): Promise<void> {
    await syncQuotas(this.reg);
  }

  private async jobs(): Promise<void> {
    await this.jobController.sync();
  }

  private async scheduler(): Promise<void> {
    await this.schedulerLoop.sync();
  }

  // ----------------------------------------------------------------------- ttl after finished

  private async ttl(): Promise<void> {
    for (const j of this.reg.store.list('batch/jobs')) {
      const ttl = j.spec?.ttlSecondsAfterFinished;
      if (ttl === undefined || ttl === null || j.metadata.deletionTimestamp) continue;
      const fin = ((j.status?.conditions ?? []) as Obj[]).find(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      );
      if (!fin) continue;
      const at = Date.parse(j.status?.completionTime ?? fin.lastTransitionTime) + ttl * 1000;
      if (Date.now() >= at) this.safeDelete(JOB, j, 'Background');
    }
  }
}

function ignoreConflict(e: unknown): void {
  if (!(e instanceof ApiError && e.code === 409)) throw e;
}
