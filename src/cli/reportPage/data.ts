/**
 * What the HTML report's page is given (embedded in it as JSON): the summary, and the attempts
 * reduced to what the plots draw. Times are seconds since `t0`.
 */
import type { Spread, StatsSummary } from '../statsSummary.js';

export interface ReportData {
  title: string;
  generatedAt: string;
  /** The first leader's start, in ms since the epoch. */
  t0: number;
  summary: StatsSummary;
  names: string[];
  lanes: string[];
  /** What the timeline's lanes are: `node` (Kubernetes, slots of a node) or `host` (worker processes' host). */
  laneKind: string;
  statuses: string[];
  /** One row per attempt: name index, lane index, status index, start, end. */
  timeline: Array<[number, number, number, number, number]>;
  /** Per job name (as `names`): cores used (CPU/wall of each attempt). */
  coresUsed: Array<Spread | null>;
  /** The phases an attempt goes through, and per job name the mean seconds in each (null: not seen). */
  phaseNames: string[];
  phases: Array<Array<number | null>>;
  failures: Array<{ name: string; jobId: string; attempt: number; status: string; message: string; logTail: string }>;
  /** Failed attempts in all (the list above keeps the first ones). */
  failureCount: number;
}
