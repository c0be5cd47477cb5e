/**
 * What `toil stats` and `toil report` say of a workflow's attempts (pure functions of the
 * records, statsRecords.ts): per job name, Toil's summary (count, and the minimum, median,
 * maximum and total of wall time, CPU time and peak memory), and the advice line — the
 * requirement that would have sufficed. The rules of the advice:
 *
 * - Memory: the largest peak measured in any attempt of the name, with a quarter more as
 *   headroom, rounded up to a size a user would write (a multiple of 64Mi up to 1Gi, of 256Mi up
 *   to 8Gi, of 1Gi beyond). Said when that is less than what the jobs asked for, or when they
 *   used more than they asked; an attempt killed for memory says to ask for more instead.
 * - Cores: the largest CPU/wall ratio of an attempt, with a quarter more, rounded up to a half
 *   core: said when more than one core was asked for and that is at most half of it.
 * - Disk: the largest temporary directory at a job's end, as for memory (at least 64Mi): said
 *   when that is at most a quarter of what was asked (the figure is taken at the end, not at the
 *   peak, hence the wider margin).
 * Figures from a worker that reports its process's peak rather than the job's are not used.
 */
import { formatSize } from '../size.js';
import type { AttemptStats, StatsData } from '../leader/statsRecords.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export interface Spread {
  min: number;
  median: number;
  max: number;
  total: number;
}

export interface JobNameSummary {
  name: string;
  /** Jobs of this name, attempts, failed attempts, and jobs whose last attempt failed. */
  jobs: number;
  attempts: number;
  failedAttempts: number;
  failedJobs: number;
  /** Attempts that were retries (after a failed attempt of the same job). */
  retries: number;
  wallSeconds: Spread | null;
  cpuSeconds: Spread | null;
  peakRss: Spread | null;
  /** The largest requirements the jobs of this name asked for. */
  requested: { cores: number; memory: number; disk: number };
  /** Attempts killed for using too much memory. */
  memoryKilled: number;
  advice: string | null;
}

export interface StatsSummary {
  workflowId: string;
  workflowFile: string | null;
  batchSystem: string | null;
  runs: StatsData['runs'];
  totals: {
    jobs: number;
    attempts: number;
    failedAttempts: number;
    failedJobs: number;
    /** Seconds from the first leader's start to the last one's end. */
    wallSeconds: number;
    coreHoursUsed: number;
    coreHoursReserved: number;
    cache: { hits: number; misses: number; hitBytes: number; missBytes: number };
  };
  jobNames: JobNameSummary[];
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]!, total: s.reduce((a, b) => a + b, 0) };
}

/** How long an attempt held its reservation, in seconds: the worker's wall time, else issue to end. */
export function heldSeconds(a: AttemptStats): number {
  return a.wallSeconds ?? Math.max(0, (a.endedAt - a.issuedAt) / 1000);
}

/** A job's attempts failed for good when its last one failed. */
function failedJobIds(attempts: AttemptStats[]): Set<string> {
  const last = new Map<string, AttemptStats>();
  for (const a of attempts) last.set(a.jobId, a);
  return new Set([...last.values()].filter((a) => a.status !== 'succeeded').map((a) => a.jobId));
}

export function summarize(data: StatsData): StatsSummary {
  const failed = failedJobIds(data.attempts);
  const byName = new Map<string, AttemptStats[]>();
  for (const a of data.attempts) byName.set(a.jobName, [...(byName.get(a.jobName) ?? []), a]);
  const jobNames = [...byName.entries()]
    .map(([name, list]) => summarizeName(name, list, failed))
    .sort((x, y) => (y.wallSeconds?.total ?? 0) - (x.wallSeconds?.total ?? 0) || x.name.localeCompare(y.name));
  const starts = data.runs.map((r) => r.leaderStart);
  const ends = data.runs.map((r) => r.end ?? r.leaderStart);
  const cache = { hits: 0, misses: 0, hitBytes: 0, missBytes: 0 };
  for (const a of data.attempts) for (const k of Object.keys(cache) as Array<keyof typeof cache>) cache[k] += a.cache?.[k] ?? 0;
  return {
    workflowId: data.workflowId,
    workflowFile: data.workflowFile ?? null,
    batchSystem: data.batchSystem ?? null,
    runs: data.runs,
    totals: {
      jobs: new Set(data.attempts.map((a) => a.jobId)).size,
      attempts: data.attempts.length,
      failedAttempts: data.attempts.filter((a) => a.status !== 'succeeded').length,
      failedJobs: failed.size,
      wallSeconds: starts.length > 0 ? (Math.max(...ends) - Math.min(...starts)) / 1000 : 0,
      coreHoursUsed: data.attempts.reduce((t, a) => t + (a.cpuSeconds ?? 0), 0) / 3600,
      coreHoursReserved: data.attempts.reduce((t, a) => t + a.requested.cores * heldSeconds(a), 0) / 3600,
      cache,
    },
    jobNames,
  };
}

function summarizeName(name: string, list: AttemptStats[], failed: Set<string>): JobNameSummary {
  const ids = new Set(list.map((a) => a.jobId));
  const seen = new Set<string>();
  let retries = 0;
  for (const a of list) {
    if (seen.has(a.jobId)) retries++;
    seen.add(a.jobId);
  }
  const nums = (f: (a: AttemptStats) => number | undefined) => list.map(f).filter((v): v is number => v !== undefined);
  const s: Omit<JobNameSummary, 'advice'> = {
    name,
    jobs: ids.size,
    attempts: list.length,
    failedAttempts: list.filter((a) => a.status !== 'succeeded').length,
    failedJobs: [...ids].filter((id) => failed.has(id)).length,
    retries,
    wallSeconds: spread(nums((a) => a.wallSeconds)),
    cpuSeconds: spread(nums((a) => a.cpuSeconds)),
    peakRss: spread(nums((a) => a.peakRss)),
    requested: {
      cores: Math.max(...list.map((a) => a.requested.cores)),
      memory: Math.max(...list.map((a) => a.requested.memory)),
      disk: Math.max(...list.map((a) => a.requested.disk)),
    },
    memoryKilled: list.filter((a) => a.status === 'memory').length,
  };
  return { ...s, advice: advice(s, list) };
}

/** The requirement that would have sufficed, in one line; null when what was asked fits. */
export function advice(s: Omit<JobNameSummary, 'advice'>, list: AttemptStats[]): string | null {
  const n = `${s.attempts} attempt${s.attempts === 1 ? '' : 's'}`;
  const parts: string[] = [];
  const asked = s.requested;
  const jobPeaks = list.filter((a) => a.measured?.peakScope !== 'process' && a.peakRss !== undefined).map((a) => a.peakRss!);
  if (s.memoryKilled > 0) {
    parts.push(
      `was killed for memory in ${s.memoryKilled} of ${n} asking for ${formatSize(asked.memory)}: ask for more (${sizeText(niceSize(asked.memory * 2))} or so)`,
    );
  } else if (jobPeaks.length > 0) {
    const peak = Math.max(...jobPeaks);
    const enough = niceSize(peak * 1.25);
    if (peak > asked.memory) {
      parts.push(`asked for ${formatSize(asked.memory)} of memory and used up to ${formatSize(peak)} in ${n}: ask for ${sizeText(enough)}`);
    } else if (enough < asked.memory) {
      parts.push(
        `asked for ${formatSize(asked.memory)} of memory and used at most ${formatSize(peak)} in ${n}: ${sizeText(enough)} would do`,
      );
    }
  }
  const ratios = list.filter((a) => a.cpuSeconds !== undefined && a.wallSeconds).map((a) => a.cpuSeconds! / a.wallSeconds!);
  if (ratios.length > 0) {
    const used = Math.max(...ratios);
    const enough = Math.max(0.5, Math.ceil(used * 1.25 * 2) / 2);
    if (asked.cores > 1 && enough <= asked.cores / 2) {
      parts.push(`asked for ${asked.cores} cores and used at most ${used.toFixed(1)}: ${enough} would do`);
    }
  }
  const disks = list.filter((a) => a.measured).map((a) => a.measured!.diskBytes);
  if (disks.length > 0) {
    const enough = niceSize(Math.max(64 * MiB, Math.max(...disks) * 1.25));
    if (enough * 4 <= asked.disk) {
      parts.push(
        `asked for ${formatSize(asked.disk)} of disk and left at most ${formatSize(Math.max(...disks))} in its directory: ${sizeText(enough)} would do`,
      );
    }
  }
  return parts.length > 0 ? `${s.name} ${parts.join('; ')}` : null;
}

/** Rounds up to a size a user would write: 64Mi steps up to 1Gi, 256Mi steps up to 8Gi, then whole Gi. */
export function niceSize(bytes: number): number {
  const step = bytes <= GiB ? 64 * MiB : bytes <= 8 * GiB ? 256 * MiB : GiB;
  return Math.max(step, Math.ceil(bytes / step) * step);
}

/** A size as a requirement is written (`256Mi`, `3Gi`). */
export function sizeText(bytes: number): string {
  return bytes % GiB === 0 ? `${bytes / GiB}Gi` : `${Math.ceil(bytes / MiB)}Mi`;
}
