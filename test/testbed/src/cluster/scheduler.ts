/**
 * The scheduler: binds each pending pod to the least allocated node that fits its requests
 * (cpu, memory, ephemeral-storage, GPUs, pod count), its node selector and required node
 * affinity, and its tolerations; an unschedulable pod gets PodScheduled=False and a
 * FailedScheduling event with the real message.
 */
import { info, now, type Registry } from './registry.js';
import type { Obj } from './store.js';
import type { Recorder } from './events.js';
import { parseQuantity } from './validate.js';
import { isTerminal, podRequests, setCondition } from './objects.js';

const POD = info('', 'pods');

export interface SchedulerOptions {
  /** scheduling is held for pods younger than this (fault: delay scheduling) */
  schedulingDelayMs: () => number;
  schedulingPaused: () => boolean;
}

export class Scheduler {
  private lastSchedMsg = new Map<string, string>();
  /** when the scheduler first saw each pod (creationTimestamp only has second precision) */
  private firstSeen = new Map<string, number>();
  constructor(
    private reg: Registry,
    private rec: Recorder,
    private opts: SchedulerOptions,
  ) {}

  async sync(): Promise<void> {
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
