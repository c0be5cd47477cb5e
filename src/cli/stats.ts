/**
 * `toil stats <jobStore|stats file>`: the summary of a workflow run with `--stats` (statsSummary.ts)
 * as text or JSON. The statistics come from the job store, or from the file `--stats` wrote next
 * to the run (`<jobStore>.stats.json`), which outlives a store that `--clean` deleted. A store
 * or file that is not there, a store run without `--stats`, or an output that cannot be written
 * is one line and exit 2, and nothing is written.
 */
import { readFile, stat } from 'node:fs/promises';
import { UsageError, errorMessage } from '../errors.js';
import { openJobStore } from '../jobstore/open.js';
import { parseStored } from '../jobstore/records.js';
import { StatsDataSchema, readStoredStats, type StatsData } from '../leader/statsRecords.js';
import { checkWritable, writeWhole } from '../outputFile.js';
import { formatSize } from '../size.js';
import { summarize, type Spread, type StatsSummary } from './statsSummary.js';

/** The statistics of a job store, or of a stats file. */
export async function loadStats(target: string): Promise<StatsData> {
  const s = await stat(target).catch(() => undefined);
  if (s?.isFile()) {
    const text = await readFile(target, 'utf8');
    try {
      return parseStored(StatsDataSchema, text, `${target} (not a toil-ts stats file?)`);
    } catch (e) {
      throw new UsageError(errorMessage(e));
    }
  }
  const store = await openJobStore(target);
  if (!(await store.exists())) throw new UsageError(`job store ${store.locator} does not exist (nor is ${target} a stats file)`);
  const data = await readStoredStats(store);
  if (!data) throw new UsageError(`job store ${store.locator} holds no statistics: run the workflow with --stats to keep them`);
  return data;
}

const seconds = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3));
const spreadText = (s: Spread | null, f: (v: number) => string, total = true) =>
  s ? `${f(s.min)} / ${f(s.median)} / ${f(s.max)}${total ? ` / ${f(s.total)}` : ''}` : '-';

/** The summary as text: the workflow's totals, a table per job name, and the advice. */
export function formatStatsText(s: StatsSummary): string {
  const t = s.totals;
  const pct = t.coreHoursReserved > 0 ? ` (${((100 * t.coreHoursUsed) / t.coreHoursReserved).toFixed(0)}%)` : '';
  const lines = [
    `Workflow ${s.workflowId}${s.workflowFile ? ` (${s.workflowFile})` : ''}${s.batchSystem ? ` on ${s.batchSystem}` : ''}`,
    `  ${s.runs.length} leader run(s), ${seconds(t.wallSeconds)} s from the first start to the last end`,
    `  jobs: ${t.jobs}, attempts: ${t.attempts}, failed attempts: ${t.failedAttempts}, jobs failed for good: ${t.failedJobs}`,
    `  core-hours: ${t.coreHoursUsed.toFixed(3)} used of ${t.coreHoursReserved.toFixed(3)} reserved${pct}`,
    `  node cache: ${t.cache.hits} hit(s) (${formatSize(t.cache.hitBytes)}), ${t.cache.misses} download(s) (${formatSize(t.cache.missBytes)})`,
    '',
  ];
  const rows = [
    ['job name', 'count', 'attempts', 'failed', 'wall s min/median/max/total', 'CPU s min/median/max/total', 'memory min/median/max'],
    ...s.jobNames.map((j) => [
      j.name,
      String(j.jobs),
      String(j.attempts),
      String(j.failedAttempts),
      spreadText(j.wallSeconds, seconds),
      spreadText(j.cpuSeconds, seconds),
      spreadText(j.peakRss, formatSize, false),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows)
    lines.push(
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    );
  const advice = s.jobNames.map((j) => j.advice).filter((a): a is string => a !== null);
  if (advice.length > 0) lines.push('', 'Advice:', ...advice.map((a) => `  ${a}`));
  return lines.join('\n');
}

/** `toil stats`: the summary of `target` as text or JSON, on stdout or in `output`. */
export async function statsCommand(target: string, o: { format: string; output?: string }): Promise<string | undefined> {
  if (o.format !== 'text' && o.format !== 'json') throw new UsageError(`--format ${o.format}: expected text or json`);
  if (o.output !== undefined) await checkWritable(o.output, `--output ${o.output}`);
  const summary = summarize(await loadStats(target));
  const text = o.format === 'json' ? JSON.stringify(summary, null, 2) : formatStatsText(summary);
  if (o.output === undefined) return text;
  await writeWhole(o.output, `${text}\n`);
  return undefined;
}
