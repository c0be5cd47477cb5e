/// <reference lib="dom" />
/**
 * The report's page script, bundled with Chart.js into the HTML file by `toil report`: it reads
 * the embedded data (data.ts) and fills each section. Text from the run (job names, messages,
 * log lines) is only ever set as text, never parsed as HTML. No network: everything it needs is
 * in the file.
 */
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import type { ReportData } from './data.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Tooltip, Legend);
Chart.defaults.animation = false;
Chart.defaults.maintainAspectRatio = false;

const COLORS = ['#2e7d32', '#c62828', '#ef6c00', '#6a1b9a', '#1565c0', '#00838f', '#4e342e', '#ad1457', '#9e9d24', '#37474f'];
const PHASE_COLORS: Record<string, string> = {
  queued: '#90a4ae',
  'waiting for a pod': '#b0bec5',
  scheduling: '#ffb74d',
  'pod setup': '#ffe082',
  'image and container start': '#81d4fa',
  running: '#43a047',
};
const MiB = 2 ** 20;
/** Failures shown unfolded; the others unfold on a click. */
const OPEN_FAILURES = 5;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function section(id: string, title: string, note?: string): HTMLElement {
  const s = el('section');
  s.id = id;
  s.append(el('h2', title));
  if (note) s.append(el('p', note, 'note'));
  document.getElementById('content')!.append(s);
  return s;
}

function canvasIn(parent: HTMLElement, heightPx: number): HTMLCanvasElement {
  const box = el('div', undefined, 'chart');
  box.style.height = `${heightPx}px`;
  const c = el('canvas');
  box.append(c);
  parent.append(box);
  return c;
}

function chart(parent: HTMLElement, heightPx: number, config: ChartConfiguration): void {
  new Chart(canvasIn(parent, heightPx), config);
}

const secs = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(3));
const size = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / MiB).toFixed(b >= 100 * MiB ? 0 : 1)} MiB`);

function summarySection(d: ReportData): void {
  const s = section('summary', 'Summary');
  const t = d.summary.totals;
  const pct = t.coreHoursReserved > 0 ? ` (${((100 * t.coreHoursUsed) / t.coreHoursReserved).toFixed(0)}%)` : '';
  const cards: Array<[string, string]> = [
    ['jobs', String(t.jobs)],
    ['attempts', String(t.attempts)],
    ['failed attempts', String(t.failedAttempts)],
    ['jobs failed for good', String(t.failedJobs)],
    ['wall time', `${secs(t.wallSeconds)} s`],
    ['core-hours used / reserved', `${t.coreHoursUsed.toFixed(3)} / ${t.coreHoursReserved.toFixed(3)}${pct}`],
    ['leader runs', String(d.summary.runs.length)],
  ];
  const grid = el('div', undefined, 'cards');
  for (const [k, v] of cards) {
    const c = el('div', undefined, 'card');
    c.append(el('div', v, 'value'), el('div', k, 'label'));
    grid.append(c);
  }
  s.append(grid);
  const advice = d.summary.jobNames.map((j) => j.advice).filter((a): a is string => a !== null);
  const a = section('advice', 'Advice', 'The requirement that would have sufficed, per job name, from the largest use measured.');
  if (advice.length === 0) a.append(el('p', 'What the jobs asked for fits what they used.'));
  const ul = el('ul');
  for (const line of advice) ul.append(el('li', line));
  a.append(ul);
}

function timelineSection(d: ReportData): void {
  const s = section('timeline', 'Timeline', `Every attempt, by ${d.laneKind} slot; seconds since the leader started.`);
  const datasets = d.statuses.map((status, si) => ({
    label: status,
    data: d.timeline
      .filter((r) => r[2] === si)
      .map((r) => ({ x: [r[3], Math.max(r[4], r[3] + 0.01)], y: d.lanes[r[1]]!, name: d.names[r[0]]! })),
    backgroundColor: COLORS[si % COLORS.length]!,
    grouped: false,
    barPercentage: 0.9,
    categoryPercentage: 1,
  }));
  chart(s, Math.min(1200, 100 + d.lanes.length * 18), {
    type: 'bar',
    data: { labels: d.lanes, datasets } as unknown as ChartConfiguration['data'],
    options: {
      indexAxis: 'y',
      parsing: { xAxisKey: 'x', yAxisKey: 'y' },
      scales: { x: { type: 'linear', title: { display: true, text: 'seconds' } }, y: { ticks: { autoSkip: true } } },
      plugins: {
        tooltip: {
          callbacks: {
            label: (c) => {
              const raw = c.raw as { x: [number, number]; name: string };
              return `${raw.name}: ${secs(raw.x[0])}–${secs(raw.x[1])} s`;
            },
          },
        },
      },
    },
  });
}

/** A range bar (min to max) per job name with its median, and what was asked as a marker. */
function rangeChart(
  parent: HTMLElement,
  d: ReportData,
  o: { title: string; spreads: Array<{ min: number; median: number; max: number } | null>; asked?: number[]; unit: string },
): void {
  parent.append(el('h3', o.title));
  const datasets: ChartConfiguration['data']['datasets'] = [
    {
      type: 'bar',
      label: 'min–max',
      data: o.spreads.map((v) => (v ? [v.min, v.max] : null)) as unknown as number[],
      backgroundColor: '#90caf9',
      order: 3,
    },
    {
      type: 'line',
      label: 'median',
      data: o.spreads.map((v) => (v ? v.median : null)),
      showLine: false,
      pointStyle: 'circle',
      pointRadius: 4,
      order: 1,
      backgroundColor: '#0d47a1',
      borderColor: '#0d47a1',
    },
  ];
  if (o.asked) {
    datasets.push({
      type: 'line',
      label: 'asked for',
      data: o.asked,
      showLine: false,
      pointStyle: 'line',
      pointRadius: 14,
      borderWidth: 3,
      order: 2,
      borderColor: '#c62828',
      backgroundColor: '#c62828',
    });
  }
  chart(parent, 260, {
    type: 'bar',
    data: { labels: d.names, datasets },
    options: { scales: { y: { beginAtZero: true, title: { display: true, text: o.unit } } } },
  });
}

function resourcesSection(d: ReportData): void {
  const s = section(
    'resources',
    'Used against asked, per job name',
    'Bars span the smallest to the largest attempt; dots are medians; red marks are what the jobs asked for.',
  );
  const jobs = d.summary.jobNames;
  rangeChart(s, d, { title: 'Duration', spreads: jobs.map((j) => j.wallSeconds), unit: 'seconds' });
  rangeChart(s, d, { title: 'CPU', spreads: d.coresUsed, asked: jobs.map((j) => j.requested.cores), unit: 'cores (CPU time / wall time)' });
  const mib = (v: { min: number; median: number; max: number } | null) =>
    v ? { min: v.min / MiB, median: v.median / MiB, max: v.max / MiB } : null;
  rangeChart(s, d, {
    title: 'Memory',
    spreads: jobs.map((j) => mib(j.peakRss)),
    asked: jobs.map((j) => j.requested.memory / MiB),
    unit: 'MiB (peak resident)',
  });
}

function phasesSection(d: ReportData): void {
  const s = section(
    'phases',
    'Where the waiting was',
    'Mean seconds an attempt of each job name spent in each phase (on Kubernetes, from the pod’s own conditions and container state).',
  );
  const datasets = d.phaseNames.map((p, i) => ({
    label: p,
    data: d.phases.map((row) => row[i] ?? 0),
    backgroundColor: PHASE_COLORS[p] ?? COLORS[i % COLORS.length]!,
  }));
  chart(s, 80 + d.names.length * 28, {
    type: 'bar',
    data: { labels: d.names, datasets },
    options: { indexAxis: 'y', scales: { x: { stacked: true, title: { display: true, text: 'seconds' } }, y: { stacked: true } } },
  });
}

function failuresSection(d: ReportData): void {
  const s = section('failures', 'Failures');
  if (d.failureCount === 0) {
    s.append(el('p', 'No attempt failed.'));
    return;
  }
  if (d.failureCount > d.failures.length) s.append(el('p', `The first ${d.failures.length} of ${d.failureCount} failed attempts.`, 'note'));
  d.failures.forEach((f, i) => {
    const box = el('details', undefined, 'failure');
    box.open = i < OPEN_FAILURES;
    box.append(el('summary', `${f.name} (${f.jobId}), attempt ${f.attempt}: ${f.status}${f.message ? ` — ${f.message}` : ''}`));
    if (f.logTail) box.append(el('pre', f.logTail));
    s.append(box);
  });
}

function cacheSection(d: ReportData): void {
  const s = section('cache', 'Node cache', 'Files read through the node cache: served from it (hits) or downloaded (misses).');
  const t = d.summary.totals.cache;
  s.append(el('p', `${t.hits} hit(s) (${size(t.hitBytes)} not downloaded), ${t.misses} download(s) (${size(t.missBytes)}).`));
}

function main(): void {
  const d = JSON.parse(document.getElementById('toil-data')!.textContent!) as ReportData;
  document.title = d.title;
  document.getElementById('title')!.textContent = d.title;
  document.getElementById('generated')!.textContent = `workflow ${d.summary.workflowId} · report made ${d.generatedAt}`;
  summarySection(d);
  timelineSection(d);
  resourcesSection(d);
  phasesSection(d);
  failuresSection(d);
  cacheSection(d);
  document.body.dataset['ready'] = 'true';
}

main();
