/**
 * `--trace FILE`: one tab-separated line per attempt as it ends, under a header line, written
 * while the workflow runs (follow it with `tail -f`; load it with a spreadsheet or
 * `pandas.read_csv(f, sep='\t')`). Times are ISO 8601, durations seconds, sizes bytes; an
 * empty field is a figure nobody measured (a worker that died before it could say). A trace
 * that exists is appended to (a restart goes on), its header written only when it is empty.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { AttemptStats } from './statsRecords.js';

type Cell = string | number | undefined;

const iso = (ms: number | undefined): Cell => (ms === undefined ? undefined : new Date(ms).toISOString());
const secs = (ms: number | undefined, from: number | undefined): Cell =>
  ms === undefined || from === undefined ? undefined : round((ms - from) / 1000);
const round = (n: number | undefined): Cell => (n === undefined ? undefined : Math.round(n * 1000) / 1000);

/** The columns: name and how to read it from an attempt. */
const COLUMNS: ReadonlyArray<[string, (a: AttemptStats) => Cell]> = [
  ['batch_id', (a) => a.batchJobId],
  ['job_id', (a) => a.jobId],
  ['name', (a) => a.jobName],
  ['attempt', (a) => a.attempt],
  ['status', (a) => a.status],
  ['exit', (a) => a.exitCode ?? undefined],
  ['node', (a) => a.place?.node ?? a.measured?.host],
  ['pod', (a) => a.place?.pod],
  ['submit', (a) => iso(a.issuedAt)],
  ['start', (a) => iso(a.measured?.startedAt ?? a.place?.phases?.started)],
  ['complete', (a) => iso(a.endedAt)],
  ['queued_s', (a) => secs(a.measured?.startedAt ?? a.place?.phases?.started, a.issuedAt)],
  ['realtime_s', (a) => round(a.wallSeconds)],
  ['cpu_s', (a) => round(a.cpuSeconds)],
  ['pct_cpu', (a) => (a.cpuSeconds !== undefined && a.wallSeconds ? Math.round((1000 * a.cpuSeconds) / a.wallSeconds) / 10 : undefined)],
  ['peak_rss', (a) => a.peakRss],
  ['read_bytes', (a) => a.measured?.readBytes],
  ['write_bytes', (a) => a.measured?.writtenBytes],
  ['disk_used', (a) => a.measured?.diskBytes],
  ['cache_hits', (a) => a.cache?.hits],
  ['cache_misses', (a) => a.cache?.misses],
  ['cores', (a) => a.requested.cores],
  ['memory', (a) => a.requested.memory],
  ['disk', (a) => a.requested.disk],
  ['scheduled', (a) => iso(a.place?.phases?.scheduled)],
  ['initialized', (a) => iso(a.place?.phases?.initialized)],
];

export const TRACE_HEADER = COLUMNS.map(([name]) => name).join('\t');

/** One attempt as a trace line (tabs and newlines in text become spaces). */
export function traceLine(a: AttemptStats): string {
  return COLUMNS.map(([, get]) => String(get(a) ?? '').replace(/[\t\r\n]+/g, ' ')).join('\t');
}

export class TraceFile {
  private constructor(private readonly fh: FileHandle) {}

  /** Opens `file` for appending; writes the header if it is empty. */
  static async open(file: string): Promise<TraceFile> {
    const fh = await open(file, 'a');
    if ((await fh.stat()).size === 0) await fh.write(`${TRACE_HEADER}\n`);
    return new TraceFile(fh);
  }

  async write(attempts: AttemptStats[]): Promise<void> {
    if (attempts.length > 0) await this.fh.write(attempts.map((a) => `${traceLine(a)}\n`).join(''));
  }

  close(): Promise<void> {
    return this.fh.close();
  }
}
