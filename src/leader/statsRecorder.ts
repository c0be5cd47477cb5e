/**
 * The leader's account of each attempt (`--stats`, `--trace`): the batch system's end (outcome,
 * where it ran, the pod's phases) joined with what the worker measured (its stats message,
 * which comes through the job store's channel, before or after the end). The rules:
 *
 * - An attempt is written once both halves are in, or once its end has waited `JOIN_WAIT_MS`
 *   for a measurement (a worker that died says nothing), or when the run ends.
 * - A worker's measurement is matched to the next end of the same job; a chained job (run by
 *   the batch job of the job before it) takes that batch job's issue time and place.
 * - Written attempts go to the trace at once and, with `--stats`, to the job store in chunks
 *   (statsRecords.ts) at most every `STORE_EVERY_MS` and at the end.
 */
import { errorMessage } from '../errors.js';
import type { BatchJobEnd } from '../batch/types.js';
import type { ResolvedRequirements } from '../job/types.js';
import type { ChannelMessage, JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import {
  STATS_FORMAT,
  STATS_HEADER,
  readStatsHeader,
  readStoredStats,
  statsChunkName,
  type AttemptStats,
  type StatsHeader,
  type StatsRun,
} from './statsRecords.js';
import type { TraceFile } from './trace.js';

export const JOIN_WAIT_MS = 5_000;
export const STORE_EVERY_MS = 10_000;
/** Log lines kept of a failed attempt. */
const FAILED_LOG_LINES = 20;

export interface StatsRecorderOptions {
  store: JobStore;
  workflowId: string;
  workflowFile: string;
  batchSystem: string;
  /** Keep the records in the job store (`--stats`). */
  keep: boolean;
  trace?: TraceFile | undefined;
  log: Logger;
}

/** One end, waiting for its measurement. */
interface Ended {
  record: AttemptStats;
  since: number;
}

export class StatsRecorder {
  private header: StatsHeader | undefined;
  private readonly run: StatsRun = { leaderStart: Date.now() };
  private readonly issuedAt = new Map<number, number>();
  private lastBatch: { id: number; at: number } | undefined;
  private readonly tries = new Map<string, number>();
  private readonly measures = new Map<string, ChannelMessage[]>();
  private waiting: Ended[] = [];
  private unstored: AttemptStats[] = [];
  private lastStored = Date.now();

  constructor(private readonly o: StatsRecorderOptions) {}

  /** Picks up the records of earlier runs (a restart), and adds this run to the timeline. */
  async load(): Promise<void> {
    if (!this.o.keep) return;
    const { store, workflowId, workflowFile, batchSystem } = this.o;
    const before = await readStatsHeader(store).catch(() => undefined);
    this.header = { format: STATS_FORMAT, workflowId, workflowFile, batchSystem, runs: [], chunks: 0, ...before };
    this.header.runs.push(this.run);
  }

  issued(batchJobId: number): void {
    const now = Date.now();
    this.run.firstIssue ??= now;
    this.issuedAt.set(batchJobId, now);
  }

  /** A worker's stats message (with what it measured, or only its cache counters). */
  measured(m: ChannelMessage): void {
    if (m.wallSeconds === undefined) return;
    const list = this.measures.get(m.jobId) ?? [];
    list.push(m);
    this.measures.set(m.jobId, list);
  }

  /** A job's attempt ended (`ok`: its result is committed); with a failed one's log. */
  async ended(job: { id: string; name: string; requested: ResolvedRequirements }, end: BatchJobEnd, ok: boolean): Promise<void> {
    const now = Date.now();
    const attempt = (this.tries.get(job.id) ?? 0) + 1;
    this.tries.set(job.id, attempt);
    if (ok) this.tries.delete(job.id);
    const record: AttemptStats = {
      jobId: job.id,
      jobName: job.name,
      attempt,
      batchJobId: end.batchJobId,
      status: ok ? 'succeeded' : end.outcome === 'succeeded' ? 'failed' : end.outcome,
      exitCode: end.exitCode,
      ...(end.message !== undefined ? { message: end.message } : {}),
      issuedAt: this.issueTime(end.batchJobId, now),
      endedAt: now,
      requested: { cores: job.requested.cores, memory: job.requested.memory, disk: job.requested.disk },
      ...(end.place ? { place: end.place } : {}),
    };
    if (!ok) {
      const log = (await this.o.store.readJobLog(job.id).catch(() => undefined)) ?? end.outputTail ?? '';
      const tail = log.trimEnd().split('\n').slice(-FAILED_LOG_LINES).join('\n');
      if (tail !== '') record.logTail = tail;
    }
    this.waiting.push({ record, since: now });
  }

  private issueTime(batchJobId: number, now: number): number {
    const at = this.issuedAt.get(batchJobId) ?? (this.lastBatch?.id === batchJobId ? this.lastBatch.at : now);
    this.issuedAt.delete(batchJobId);
    this.lastBatch = { id: batchJobId, at };
    return at;
  }

  /** Writes the attempts that are complete (all, when `final`): to the trace now, to the store in chunks. */
  async flush(final = false): Promise<void> {
    const now = Date.now();
    const out: AttemptStats[] = [];
    this.waiting = this.waiting.filter((w) => {
      const m = this.takeMeasure(w.record.jobId);
      if (m) Object.assign(w.record, m);
      else if (!final && now - w.since < JOIN_WAIT_MS) return true;
      out.push(w.record);
      return false;
    });
    if (final) this.measures.clear();
    await this.o.trace?.write(out).catch((e: unknown) => this.o.log.warning(`cannot write the trace: ${errorMessage(e)}`));
    if (!this.header) return;
    this.unstored.push(...out);
    if (final || now - this.lastStored >= STORE_EVERY_MS) await this.store();
  }

  private takeMeasure(jobId: string): Partial<AttemptStats> | undefined {
    const list = this.measures.get(jobId);
    const m = list?.shift();
    if (list?.length === 0) this.measures.delete(jobId);
    if (!m) return undefined;
    return {
      ...(m.wallSeconds !== undefined ? { wallSeconds: m.wallSeconds } : {}),
      ...(m.cpuSeconds !== undefined ? { cpuSeconds: m.cpuSeconds } : {}),
      ...(m.peakRss !== undefined ? { peakRss: m.peakRss } : {}),
      ...(m.measured ? { measured: m.measured } : {}),
      ...(m.cache ? { cache: m.cache } : {}),
    };
  }

  private async store(): Promise<void> {
    const header = this.header;
    if (!header) return;
    this.lastStored = Date.now();
    try {
      if (this.unstored.length > 0) {
        const text = this.unstored.map((a) => JSON.stringify(a)).join('\n');
        await this.o.store.writeShared(statsChunkName(header.chunks), `${text}\n`);
        header.chunks++;
        this.unstored = [];
      }
      await this.o.store.writeShared(STATS_HEADER, JSON.stringify(header));
    } catch (e) {
      this.o.log.warning(`cannot record the statistics in the job store: ${errorMessage(e)}`);
    }
  }

  /** The run ended: every attempt written, the run's end in the timeline. */
  async close(ok: boolean): Promise<void> {
    this.run.end = Date.now();
    this.run.ok = ok;
    await this.flush(true);
    await this.o.trace?.close().catch(() => undefined);
  }

  /** Everything the store keeps (after `close`), for the stats file. */
  read(): ReturnType<typeof readStoredStats> {
    return readStoredStats(this.o.store);
  }
}
