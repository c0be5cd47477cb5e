/**
 * The report's data (reportPage/data.ts) from a workflow's statistics: a pure function. The
 * rules: an attempt's bar on the timeline runs from when its worker started it (else its pod's
 * container, else its issue) for the worker's wall time (else until the leader learnt of its
 * end); lanes are a node's (Kubernetes) or a host's (single_machine) slots, each attempt in the
 * first slot free at its start; the phases are those of the pod (waiting for a pod, scheduling,
 * pod setup, image and container start, running) where the batch system reports them, else
 * queued and running; failures keep the first `MAX_FAILURES` attempts with their last log lines.
 */
import type { AttemptStats, StatsData } from '../leader/statsRecords.js';
import type { ReportData } from './reportPage/data.js';
import { spread, summarize } from './statsSummary.js';

export const MAX_FAILURES = 100;

const PHASES = ['queued', 'waiting for a pod', 'scheduling', 'pod setup', 'image and container start', 'running'] as const;

function startOf(a: AttemptStats): number {
  return a.measured?.startedAt ?? a.place?.phases?.started ?? a.issuedAt;
}

function endOf(a: AttemptStats): number {
  return a.wallSeconds !== undefined ? startOf(a) + a.wallSeconds * 1000 : Math.max(a.endedAt, startOf(a));
}

/** Seconds of each phase of an attempt (absent: not known). */
function phasesOf(a: AttemptStats): Partial<Record<(typeof PHASES)[number], number>> {
  const p = a.place?.phases;
  const d = (from: number | undefined, to: number | undefined) =>
    from !== undefined && to !== undefined ? Math.max(0, (to - from) / 1000) : undefined;
  const out: Partial<Record<(typeof PHASES)[number], number>> = {};
  const set = (k: (typeof PHASES)[number], v: number | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  if (p?.created !== undefined) {
    set('waiting for a pod', d(a.issuedAt, p.created));
    set('scheduling', d(p.created, p.scheduled));
    set('pod setup', d(p.scheduled, p.initialized));
    set('image and container start', d(p.initialized ?? p.scheduled, p.started));
    set('running', d(p.started, p.finished) ?? a.wallSeconds);
  } else {
    set('queued', d(a.issuedAt, a.measured?.startedAt));
    set('running', a.wallSeconds);
  }
  return out;
}

/** Lanes: per node or host, slots filled in order of start. */
function laneOf(attempts: AttemptStats[]): { lanes: string[]; laneIndex: number[] } {
  const order = attempts.map((a, i) => i).sort((x, y) => startOf(attempts[x]!) - startOf(attempts[y]!));
  const slots = new Map<string, number[]>();
  const laneIds = new Map<string, number>();
  const lanes: string[] = [];
  const laneIndex = new Array<number>(attempts.length).fill(0);
  for (const i of order) {
    const a = attempts[i]!;
    const node = a.place?.node ?? a.measured?.host ?? 'unknown';
    const ends = slots.get(node) ?? [];
    slots.set(node, ends);
    let k = ends.findIndex((e) => e <= startOf(a));
    if (k < 0) k = ends.push(0) - 1;
    ends[k] = endOf(a);
    const label = `${node} #${k + 1}`;
    if (!laneIds.has(label)) laneIds.set(label, lanes.push(label) - 1);
    laneIndex[i] = laneIds.get(label)!;
  }
  // Lanes in order of node, then slot.
  const key = (l: string) => l.replace(/#(\d+)$/, (_, n: string) => `#${n.padStart(6, '0')}`);
  const sorted = lanes.map((l, i) => [key(l), i] as const).sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const position = new Array<number>(lanes.length);
  sorted.forEach(([, old], k) => (position[old] = k));
  return { lanes: sorted.map(([, old]) => lanes[old]!), laneIndex: laneIndex.map((i) => position[i]!) };
}

export function reportData(data: StatsData, o: { title: string; now?: Date }): ReportData {
  const summary = summarize(data);
  const names = summary.jobNames.map((j) => j.name);
  const nameIdx = new Map(names.map((n, i) => [n, i]));
  const statuses = [...new Set(data.attempts.map((a) => a.status))].sort((x, y) =>
    x === 'succeeded' ? -1 : y === 'succeeded' ? 1 : x.localeCompare(y),
  );
  const statusIdx = new Map(statuses.map((s, i) => [s, i]));
  const t0 = Math.min(...data.runs.map((r) => r.leaderStart), ...data.attempts.map((a) => a.issuedAt));
  const sec = (ms: number) => Math.round((ms - t0) / 10) / 100;
  const { lanes, laneIndex } = laneOf(data.attempts);
  const byName = names.map(() => [] as AttemptStats[]);
  for (const a of data.attempts) byName[nameIdx.get(a.jobName)!]!.push(a);
  const phaseSeen = new Set<string>();
  const phases = byName.map((list) => {
    const sums = PHASES.map(() => ({ total: 0, n: 0 }));
    for (const a of list) {
      const p = phasesOf(a);
      PHASES.forEach((k, i) => {
        const v = p[k];
        if (v === undefined) return;
        phaseSeen.add(k);
        sums[i]!.total += v;
        sums[i]!.n++;
      });
    }
    return sums.map((s) => (s.n > 0 ? Math.round((s.total / s.n) * 1000) / 1000 : null));
  });
  const kept = PHASES.map((k, i) => [k, i] as const).filter(([k]) => phaseSeen.has(k));
  const failed = data.attempts.filter((a) => a.status !== 'succeeded');
  return {
    title: o.title,
    generatedAt: (o.now ?? new Date()).toISOString(),
    t0: Number.isFinite(t0) ? t0 : 0,
    summary,
    names,
    lanes,
    laneKind: data.attempts.some((a) => a.place?.pod) ? 'node' : 'host',
    statuses,
    timeline: data.attempts.map((a, i) => [
      nameIdx.get(a.jobName)!,
      laneIndex[i]!,
      statusIdx.get(a.status)!,
      sec(startOf(a)),
      sec(endOf(a)),
    ]),
    coresUsed: byName.map((list) =>
      spread(list.filter((a) => a.cpuSeconds !== undefined && a.wallSeconds).map((a) => a.cpuSeconds! / a.wallSeconds!)),
    ),
    phaseNames: kept.map(([k]) => k),
    phases: phases.map((row) => kept.map(([, i]) => row[i]!)),
    failures: failed.slice(0, MAX_FAILURES).map((a) => ({
      name: a.jobName,
      jobId: a.jobId,
      attempt: a.attempt,
      status: a.status,
      message: a.message ?? '',
      logTail: a.logTail ?? '',
    })),
    failureCount: failed.length,
  };
}
