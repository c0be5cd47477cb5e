/**
 * Control-plane loops: service-account/root-CA publisher, namespace lifecycle, garbage collector,
 * scheduler, job controller and TTL-after-finished controller. Each reconciles the whole store when
 * kicked (after any change) and on a short timer (for deadlines, TTLs and back-offs).
 */
import { ApiError } from './errors.js';
import { info, now, Registry } from './registry.js';
import { RESOURCES, resKey, type ResourceInfo } from './resources.js';
import { clone, type Obj } from './store.js';
import type { Recorder } from './events.js';
import { parseQuantity } from './validate.js';

const POD = info('', 'pods');
const JOB = info('batch', 'jobs');
const SA = info('', 'serviceaccounts');
const CM = info('', 'configmaps');
const TRACKING = 'batch.kubernetes.io/job-tracking';

export interface ControllerOptions {
  caPem: string;
  /** first back-off before re-creating a failed Job pod (Kubernetes: 10 s, doubling, max 6 min) */
  jobBackoffBaseMs: number;
  /** scheduling is held for pods younger than this (fault: delay scheduling) */
  schedulingDelayMs: () => number;
  schedulingPaused: () => boolean;
}

export const isTerminal = (p: Obj): boolean => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
const cond = (type: string, reason: string, message: string, status = 'True'): Obj => ({
  type,
  status,
  lastProbeTime: now(),
  lastTransitionTime: now(),
  reason,
  message,
});
/** The state the kubelet gives a container it cannot account for when its pod ends. */
export function unknownContainerState(): Obj {
  return {
    terminated: {
      exitCode: 137,
      reason: 'ContainerStatusUnknown',
      message: 'The container could not be located when the pod was terminated',
      startedAt: null,
      finishedAt: now(),
    },
  };
}

export function setCondition(list: Obj[] | undefined, c: Obj): Obj[] {
  const out = [...(list ?? [])];
  const i = out.findIndex((x) => x.type === c.type);
  if (i >= 0) {
    const old = out[i]!;
    if (old.status === c.status && old.reason === c.reason && old.message === c.message) return out;
    out[i] = { ...c, lastTransitionTime: old.status === c.status ? old.lastTransitionTime : c.lastTransitionTime };
  } else out.push(c);
  return out;
}
/** One Job being synced: the object, its spec, the status being built, and whether it had finished. */
interface JobSync {
  job: Obj;
  jobObj: Obj;
  spec: Obj;
  st: Obj;
  finished: boolean;
}
interface PodTally {
  failJob?: { reason: string; msg: string };
  newlyFailed: number;
  toRelease: Obj[];
}

/** A pod the Job counts as failed: Failed, or deleted before it could succeed (not yet running). */
const isFailedPod = (p: Obj): boolean =>
  p.status?.phase === 'Failed' ||
  (!!p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && (!p.spec.nodeName || p.status?.phase === 'Pending'));

/** Completions needed: spec.completions; for work-queue Jobs, what succeeded once every pod is done (else never). */
function completionsOf(spec: Obj, st: Obj, pods: Obj[]): number {
  const workQueue = spec.completions === undefined || spec.completions === null;
  if (!workQueue) return spec.completions;
  return (st.succeeded ?? 0) > 0 && pods.every((p) => isTerminal(p) || p.metadata.deletionTimestamp) ? (st.succeeded ?? 0) : Infinity;
}

const hasCond = (o: Obj, type: string): boolean => (o.status?.conditions ?? []).some((c: Obj) => c.type === type && c.status === 'True');

export function podRequests(spec: Obj): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const c of (spec.containers ?? []) as Obj[])
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) sum[k] = (sum[k] ?? 0) + parseQuantity(v);
  for (const c of (spec.initContainers ?? []) as Obj[])
    for (const [k, v] of Object.entries(c.resources?.requests ?? {})) sum[k] = Math.max(sum[k] ?? 0, parseQuantity(v));
  return sum;
}

export class Controllers {
  private timer?: NodeJS.Timeout;
  private tick?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;
  private lastFailure = new Map<string, number>();
  private lastSchedMsg = new Map<string, string>();
  /** when the scheduler first saw each pod (creationTimestamp only has second precision) */
  private firstSeen = new Map<string, number>();
  private nodeMissingSince = new Map<string, number>();
  /** nodes known to be gone for good (faults.loseNode): their pods are collected at once */
  nodesGone = new Set<string>();
  constructor(
    private reg: Registry,
    private rec: Recorder,
    private opts: ControllerOptions,
  ) {}

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
        for (const step of [this.serviceAccounts, this.namespaces, this.podGC, this.gc, this.jobs, this.ttl, this.scheduler]) {
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
    try {
      this.reg.delete(r, o.metadata.namespace, o.metadata.name, {
        propagationPolicy: policy,
        ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
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
    await this.reg.mutate({ inf: r, ns: o.metadata.namespace, name: o.metadata.name }, (x) => {
      const fins = (x.metadata.finalizers ?? []).filter((y: string) => y !== f);
      if (fins.length === (x.metadata.finalizers ?? []).length) return false;
      if (fins.length) x.metadata.finalizers = fins;
      else delete x.metadata.finalizers;
      return true;
    });
  }

  // ------------------------------------------------------------------------------ scheduler

  private async scheduler(): Promise<void> {
    if (this.opts.schedulingPaused()) return;
    const store = this.reg.store;
    const nodes = store.list('nodes');
    const pods = store.list('pods');
    const used = new Map<string, Record<string, number>>();
    for (const p of pods) {
      if (p.spec.nodeName && !isTerminal(p)) addUsage(used, p.spec.nodeName, podRequests(p.spec));
    }
    const delay = this.opts.schedulingDelayMs();
    for (const p of pods) {
      if (p.spec.nodeName || p.metadata.deletionTimestamp || isTerminal(p) || p.spec.schedulerName !== 'default-scheduler') continue;
      if (!this.firstSeen.has(p.metadata.uid)) this.firstSeen.set(p.metadata.uid, Date.now());
      if (delay > 0 && Date.now() - this.firstSeen.get(p.metadata.uid)! < delay) continue;
      if ((p.spec.schedulingGates ?? []).length) continue;
      await this.scheduleOne(p, nodes, used);
    }
  }

  /** Binds the pod to the least allocated node that fits, or reports it Unschedulable. */
  private async scheduleOne(p: Obj, nodes: Obj[], used: Map<string, Record<string, number>>): Promise<void> {
    const req = podRequests(p.spec);
    const reasons = new Map<string, number>();
    const resourceShort = new Set<string>();
    const fits: Obj[] = [];
    for (const n of nodes) {
      const why = this.filter(p, n, req, used.get(n.metadata.name) ?? { pods: 0 });
      if (why.length === 0) fits.push(n);
      for (const w of why) {
        reasons.set(w, (reasons.get(w) ?? 0) + 1);
        if (w.startsWith('Insufficient') || w === 'Too many pods') resourceShort.add(n.metadata.name);
      }
    }
    if (fits.length === 0) {
      await this.markUnschedulable(p, unschedulableMessage(nodes.length, reasons, resourceShort.size));
      return;
    }
    const node = leastAllocated(fits, used, req);
    const store = this.reg.store;
    const cur = store.get('pods', p.metadata.namespace, p.metadata.name);
    if (!cur || cur.spec.nodeName) return;
    cur.spec.nodeName = node.metadata.name;
    cur.status = {
      ...(cur.status ?? {}),
      conditions: setCondition(cur.status?.conditions, {
        type: 'PodScheduled',
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: now(),
      }),
    };
    store.update('pods', cur);
    this.lastSchedMsg.delete(`${p.metadata.namespace}/${p.metadata.name}`);
    this.firstSeen.delete(p.metadata.uid);
    addUsage(used, node.metadata.name, req);
    this.rec.record(
      { ...cur, kind: 'Pod', apiVersion: 'v1' },
      {
        type: 'Normal',
        reason: 'Scheduled',
        message: `Successfully assigned ${String(p.metadata.namespace)}/${String(p.metadata.name)} to ${String(node.metadata.name)}`,
        component: 'default-scheduler',
      },
    );
    this.reg.onChange();
  }

  /** PodScheduled=False/Unschedulable, and a FailedScheduling event when the message changed. */
  private async markUnschedulable(p: Obj, msg: string): Promise<void> {
    await this.reg.mutate(
      { inf: POD, ns: p.metadata.namespace, name: p.metadata.name },
      (x) => {
        x.status = {
          ...(x.status ?? {}),
          phase: 'Pending',
          conditions: setCondition(x.status?.conditions, {
            type: 'PodScheduled',
            status: 'False',
            lastProbeTime: null,
            lastTransitionTime: now(),
            reason: 'Unschedulable',
            message: msg,
          }),
        };
      },
      'status',
    );
    const key = `${p.metadata.namespace}/${p.metadata.name}`;
    if (this.lastSchedMsg.get(key) !== msg) {
      this.lastSchedMsg.set(key, msg);
      this.rec.record(
        { ...p, kind: 'Pod', apiVersion: 'v1' },
        { type: 'Warning', reason: 'FailedScheduling', message: msg, component: 'default-scheduler' },
      );
    }
  }

  private filter(p: Obj, n: Obj, req: Record<string, number>, used: Record<string, number>): string[] {
    const why: string[] = [];
    const ready = (n.status?.conditions ?? []).find((c: Obj) => c.type === 'Ready');
    const tolerations = (p.spec.tolerations ?? []) as Obj[];
    const tolerates = (t: Obj): boolean =>
      tolerations.some(
        (tol) =>
          (tol.effect === undefined || tol.effect === '' || tol.effect === t.effect) &&
          (tol.operator === 'Exists'
            ? tol.key === undefined || tol.key === '' || tol.key === t.key
            : tol.key === t.key && (tol.value ?? '') === (t.value ?? '')),
      );
    if (n.spec?.unschedulable && !tolerates({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }))
      why.push('node(s) were unschedulable');
    if (ready?.status !== 'True' && !n.spec?.taints?.length) why.push('node(s) were not ready');
    const bad = ((n.spec?.taints ?? []) as Obj[]).filter((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(t));
    if (bad.length) {
      const t = bad[0]!;
      why.push(`node(s) had untolerated taint {${String(t.key)}: ${String(t.value ?? '')}}`);
    }
    const labels = { ...(n.metadata.labels ?? {}) } as Record<string, string>;
    let affinityOk = Object.entries(p.spec.nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
    const terms = (p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) as Obj[];
    if (terms.length) affinityOk &&= terms.some((t) => matchNodeTerm(t, n));
    if (!affinityOk) why.push("node(s) didn't match Pod's node affinity/selector");
    const alloc = (n.status?.allocatable ?? {}) as Record<string, string>;
    const names: Record<string, string> = { cpu: 'cpu', memory: 'memory', 'ephemeral-storage': 'ephemeral-storage' };
    for (const [k, v] of Object.entries(req)) {
      if (v <= 0) continue;
      const cap = alloc[k] === undefined ? 0 : parseQuantity(alloc[k]);
      if ((used[k] ?? 0) + v > cap + 1e-9) why.push(`Insufficient ${names[k] ?? k}`);
    }
    if ((used.pods ?? 0) + 1 > parseQuantity(alloc.pods ?? '110')) why.push('Too many pods');
    return why;
  }

  // --------------------------------------------------------------------------- job controller

  private async jobs(): Promise<void> {
    const store = this.reg.store;
    const podsByOwner = new Map<string, Obj[]>();
    for (const p of store.list('pods')) {
      const ref = ((p.metadata.ownerReferences ?? []) as Obj[]).find((r) => r.controller && r.kind === 'Job');
      if (ref) {
        const l = podsByOwner.get(ref.uid) ?? [];
        l.push(p);
        podsByOwner.set(ref.uid, l);
      } else if ((p.metadata.finalizers ?? []).includes(TRACKING)) {
        // orphaned pod (its Job deleted with propagation Orphan): nothing will count it, so the
        // job controller releases it at once, running or not, as the real one does
        await this.removeFinalizer(POD, p, TRACKING);
      }
    }
    for (const j of store.list('batch/jobs')) {
      const pods = podsByOwner.get(j.metadata.uid) ?? [];
      const finished = hasCond(j, 'Complete') || hasCond(j, 'Failed');
      if (finished && !pods.some((p) => !isTerminal(p) || (p.metadata.finalizers ?? []).includes(TRACKING))) continue;
      await this.syncJob(j, pods);
    }
    // pods whose Job is gone: released whatever their phase (the garbage collector deletes them)
    for (const [uid, pods] of podsByOwner) {
      if (store.byUID(uid)) continue;
      for (const p of pods) if ((p.metadata.finalizers ?? []).includes(TRACKING)) await this.removeFinalizer(POD, p, TRACKING);
    }
  }

  private podFailureAction(job: Obj, p: Obj): { action: string; index: number; msg: string } | undefined {
    const rules = (job.spec.podFailurePolicy?.rules ?? []) as Obj[];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.onExitCodes) {
        const e = r.onExitCodes as Obj;
        for (const cs of (p.status?.containerStatuses ?? []) as Obj[]) {
          if (e.containerName && e.containerName !== cs.name) continue;
          const code = cs.state?.terminated?.exitCode;
          if (code === undefined || code === 0) continue;
          const inList = (e.values as number[]).includes(code);
          if ((e.operator === 'In' && inList) || (e.operator === 'NotIn' && !inList)) {
            return {
              action: r.action,
              index: i,
              msg: `Container ${String(cs.name)} for pod ${String(p.metadata.namespace)}/${String(p.metadata.name)} failed with exit code ${String(code)} matching ${String(r.action)} rule at index ${i}`,
            };
          }
        }
      }
      if (r.onPodConditions) {
        for (const pat of r.onPodConditions as Obj[]) {
          const c = (p.status?.conditions ?? []).find((x: Obj) => x.type === pat.type && x.status === (pat.status ?? 'True'));
          if (c)
            return {
              action: r.action,
              index: i,
              msg: `Pod ${String(p.metadata.namespace)}/${String(p.metadata.name)} has condition ${String(pat.type)} matching ${String(r.action)} rule at index ${i}`,
            };
        }
      }
    }
    return undefined;
  }

  private async syncJob(job: Obj, pods: Obj[]): Promise<void> {
    const spec = job.spec as Obj;
    const s: JobSync = {
      job,
      jobObj: { ...job, kind: 'Job', apiVersion: 'batch/v1' },
      spec,
      st: clone((job.status ?? {}) as Obj),
      finished: hasCond(job, 'Complete') || hasCond(job, 'Failed'),
    };
    const tally = this.tallyFinished(s, pods);
    if (tally.newlyFailed) this.lastFailure.set(job.metadata.uid, Date.now());
    const active = pods.filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp);
    const terminating = pods.filter((p) => !!p.metadata.deletionTimestamp && !isTerminal(p));
    if (!s.finished && !spec.suspend) s.st.startTime ??= now();
    const completions = completionsOf(spec, s.st, pods);
    let conditions = this.judge(s, tally.failJob, completions);
    const failing = conditions.find((c) => c.type === 'FailureTarget' && c.status === 'True');
    const succeeding = conditions.some((c) => c.type === 'SuccessCriteriaMet' && c.status === 'True');
    if (failing || succeeding || s.finished) {
      for (const p of active) this.safeDelete(POD, p, 'Background');
    }
    if (!s.finished && active.length === 0 && terminating.length === 0) conditions = this.conclude(s, conditions, failing, succeeding);
    const created =
      failing || succeeding ? 0 : await this.createDue(s, { active: active.length, terminating: terminating.length, completions });
    await this.writeJobStatus(s, conditions, { active, terminating: terminating.length, created });
    for (const p of tally.toRelease) await this.removeFinalizer(POD, p, TRACKING);
  }

  /** Counts finished pods still carrying the tracking finalizer into succeeded/failed, as the pod failure policy says. */
  private tallyFinished({ job, spec, st }: JobSync, pods: Obj[]): PodTally {
    const tally: PodTally = { newlyFailed: 0, toRelease: [] };
    for (const p of pods) {
      if (!(p.metadata.finalizers ?? []).includes(TRACKING)) continue;
      if (p.status?.phase === 'Succeeded') {
        st.succeeded = (st.succeeded ?? 0) + 1;
        tally.toRelease.push(p);
      } else if (isFailedPod(p)) {
        const a = spec.podFailurePolicy ? this.podFailureAction(job, p) : undefined;
        if (a?.action !== 'Ignore') {
          st.failed = (st.failed ?? 0) + 1;
          tally.newlyFailed++;
          if (a?.action === 'FailJob' && !tally.failJob) tally.failJob = { reason: 'PodFailurePolicy', msg: a.msg };
        }
        tally.toRelease.push(p);
      }
    }
    return tally;
  }

  /** Sets FailureTarget (pod failure policy, backoff limit, deadline) or SuccessCriteriaMet, once. */
  private judge({ job, jobObj, spec, st, finished }: JobSync, failJob: PodTally['failJob'], completions: number): Obj[] {
    const conditions = (st.conditions ?? []) as Obj[];
    if (finished || hasCond(job, 'FailureTarget') || hasCond(job, 'SuccessCriteriaMet')) return conditions;
    let failure = failJob;
    if (!failure && (st.failed ?? 0) > (spec.backoffLimit ?? 6))
      failure = { reason: 'BackoffLimitExceeded', msg: 'Job has reached the specified backoff limit' };
    if (
      !failure &&
      spec.activeDeadlineSeconds &&
      st.startTime &&
      Date.now() - Date.parse(st.startTime) >= spec.activeDeadlineSeconds * 1000
    )
      failure = { reason: 'DeadlineExceeded', msg: 'Job was active longer than specified deadline' };
    if (failure) {
      this.rec.record(jobObj, { type: 'Warning', reason: failure.reason, message: failure.msg, component: 'job-controller' });
      return setCondition(conditions, cond('FailureTarget', failure.reason, failure.msg));
    }
    if ((st.succeeded ?? 0) >= completions)
      return setCondition(conditions, cond('SuccessCriteriaMet', 'CompletionsReached', 'Reached expected number of succeeded pods'));
    return conditions;
  }

  /** Once no pod is left running: Failed after FailureTarget, Complete after SuccessCriteriaMet. */
  private conclude({ jobObj, st }: JobSync, conditions: Obj[], failing: Obj | undefined, succeeding: boolean): Obj[] {
    if (failing) return setCondition(conditions, cond('Failed', failing.reason, failing.message));
    if (!succeeding) return conditions;
    st.completionTime = now();
    this.rec.record(jobObj, { type: 'Normal', reason: 'Completed', message: 'Job completed', component: 'job-controller' });
    return setCondition(conditions, cond('Complete', 'CompletionsReached', 'Reached expected number of succeeded pods'));
  }

  /** Creates the pods parallelism and completions still call for, once the failure back-off has passed; returns how many. */
  private async createDue(
    { job, jobObj, spec, st, finished }: JobSync,
    counts: { active: number; terminating: number; completions: number },
  ): Promise<number> {
    if (finished || spec.suspend || job.metadata.deletionTimestamp) return 0;
    const workQueue = spec.completions === undefined || spec.completions === null;
    const countTerminating = spec.podReplacementPolicy === 'Failed' ? counts.terminating : 0;
    const remaining = workQueue ? ((st.succeeded ?? 0) > 0 ? 0 : Infinity) : counts.completions - (st.succeeded ?? 0);
    const want = Math.min(spec.parallelism ?? 1, remaining) - counts.active - countTerminating;
    const last = this.lastFailure.get(job.metadata.uid);
    const failed = st.failed ?? 0;
    const backoff = failed > 0 ? Math.min(this.opts.jobBackoffBaseMs * 2 ** (failed - 1), 360_000) : 0;
    if (want <= 0 || (last && Date.now() - last < backoff)) return 0;
    let created = 0;
    for (let i = 0; i < want; i++) if (await this.createPod(job, jobObj)) created++;
    return created;
  }

  private async writeJobStatus(
    { job, st }: JobSync,
    conditions: Obj[],
    pods: { active: Obj[]; terminating: number; created: number },
  ): Promise<void> {
    if (conditions.length) st.conditions = conditions;
    st.active = pods.active.length + pods.created;
    st.ready = pods.active.filter((p) => hasCond(p, 'Ready')).length;
    st.terminating = pods.terminating;
    st.uncountedTerminatedPods = {};
    if (!st.active) delete st.active;
    if (!st.succeeded) delete st.succeeded;
    if (!st.failed) delete st.failed;
    if (JSON.stringify(st) !== JSON.stringify(job.status ?? {})) {
      await this.reg.mutate(
        { inf: JOB, ns: job.metadata.namespace, name: job.metadata.name },
        (x) => {
          x.status = st;
        },
        'status',
      );
    }
  }

  private async createPod(job: Obj, jobObj: Obj): Promise<boolean> {
    const t = clone(job.spec.template as Obj);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${String(job.metadata.name)}-`,
        namespace: job.metadata.namespace,
        labels: t.metadata?.labels ?? {},
        ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'Job',
            name: job.metadata.name,
            uid: job.metadata.uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
        finalizers: [TRACKING],
      },
      spec: t.spec,
    };
    try {
      const out = await this.reg.create(POD, job.metadata.namespace, pod);
      this.rec.record(jobObj, {
        type: 'Normal',
        reason: 'SuccessfulCreate',
        message: `Created pod: ${String(out.obj.metadata.name)}`,
        component: 'job-controller',
      });
      return true;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.rec.record(jobObj, { type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${msg}`, component: 'job-controller' });
      return false;
    }
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

function matchNodeTerm(t: Obj, n: Obj): boolean {
  const labels = (n.metadata.labels ?? {}) as Record<string, string>;
  const ok = (e: Obj, v: string | undefined): boolean => {
    switch (e.operator) {
      case 'In':
        return v !== undefined && (e.values ?? []).includes(v);
      case 'NotIn':
        return v === undefined || !(e.values ?? []).includes(v);
      case 'Exists':
        return v !== undefined;
      case 'DoesNotExist':
        return v === undefined;
      case 'Gt':
        return v !== undefined && Number(v) > Number(e.values?.[0]);
      case 'Lt':
        return v !== undefined && Number(v) < Number(e.values?.[0]);
      default:
        return false;
    }
  };
  const exprs = (t.matchExpressions ?? []) as Obj[];
  const fields = (t.matchFields ?? []) as Obj[];
  if (!exprs.length && !fields.length) return false;
  return exprs.every((e) => ok(e, labels[e.key])) && fields.every((e) => ok(e, e.key === 'metadata.name' ? n.metadata.name : undefined));
}

function ignoreConflict(e: unknown): void {
  if (!(e instanceof ApiError && e.code === 409)) throw e;
}

function addUsage(used: Map<string, Record<string, number>>, node: string, req: Record<string, number>): void {
  const u = used.get(node) ?? { pods: 0 };
  for (const [k, v] of Object.entries(req)) u[k] = (u[k] ?? 0) + v;
  u.pods = (u.pods ?? 0) + 1;
  used.set(node, u);
}

/** The scheduler's FailedScheduling message: reasons counted over nodes, then the preemption summary. */
function unschedulableMessage(total: number, reasons: Map<string, number>, resourceShort: number): string {
  if (total === 0) return 'no nodes available to schedule pods';
  const parts = [...reasons.entries()].map(([w, c]) => `${c} ${w}`).sort();
  const notHelpful = total - resourceShort;
  const pre = [
    resourceShort ? `${resourceShort} No preemption victims found for incoming pod` : '',
    notHelpful ? `${notHelpful} Preemption is not helpful for scheduling` : '',
  ]
    .filter(Boolean)
    .sort()
    .join(', ');
  return `0/${total} nodes are available: ${parts.join(', ')}. preemption: 0/${total} nodes are available: ${pre}.`;
}

/** Least allocated (by cpu then memory fraction), ties by name. */
function leastAllocated(fits: Obj[], used: Map<string, Record<string, number>>, req: Record<string, number>): Obj {
  const score = (n: Obj): number => {
    const u = used.get(n.metadata.name) ?? {};
    const a = n.status?.allocatable ?? {};
    const cpu = ((u.cpu ?? 0) + (req.cpu ?? 0)) / (parseQuantity(a.cpu ?? '1') || 1);
    const mem = ((u.memory ?? 0) + (req.memory ?? 0)) / (parseQuantity(a.memory ?? '1') || 1);
    return (cpu + mem) / 2 + (u.pods ?? 0) * 1e-6;
  };
  return [...fits].sort((a, b) => score(a) - score(b) || String(a.metadata.name).localeCompare(b.metadata.name))[0]!;
}
