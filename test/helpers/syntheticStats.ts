/**
 * A made-up but well-formed account of a large Kubernetes run, for the report's size and opening
 * time: `jobs` jobs of six names over four nodes, one in twenty failing its first attempt (with
 * log lines that look like HTML, which the report must show as text), pod phases and cache figures.
 */
import type { AttemptStats, StatsData } from '../../src/leader/statsRecords.js';

const MiB = 2 ** 20;
const NAMES = ['split', 'count-chunk', 'align', 'sort', 'merge', 'report'];

export function syntheticStats(jobs: number): StatsData {
  const t0 = Date.UTC(2026, 0, 1, 12);
  const attempts: AttemptStats[] = [];
  let batch = 0;
  for (let j = 0; j < jobs; j++) {
    const name = NAMES[j % NAMES.length]!;
    const tries = j % 20 === 7 ? 2 : 1;
    for (let k = 1; k <= tries; k++) {
      const ok = k === tries;
      const issued = t0 + ((j * 37) % 3_600_000) + (k - 1) * 60_000;
      const created = issued + 400;
      const started = created + 1500 + (j % 5) * 300;
      const wall = 5 + (j % 13) * 2.5;
      const node = `node-${(j % 4) + 1}`;
      attempts.push({
        jobId: `${name}-${j.toString(36)}`,
        jobName: name,
        attempt: k,
        batchJobId: ++batch,
        status: ok ? 'succeeded' : j % 40 === 7 ? 'memory' : 'failed',
        exitCode: ok ? 0 : 1,
        ...(ok ? {} : { message: 'the job threw Error: <b>not bold</b> truncated input' }),
        issuedAt: issued,
        endedAt: started + wall * 1000 + 500,
        requested: { cores: name === 'align' ? 4 : 1, memory: 2048 * MiB, disk: 2048 * MiB },
        wallSeconds: wall,
        cpuSeconds: wall * (name === 'align' ? 1.2 : 0.8),
        peakRss: (120 + (j % 60)) * MiB,
        measured: {
          startedAt: started,
          childCpuSeconds: 0,
          peakScope: 'job',
          readBytes: 10 * MiB,
          writtenBytes: 5 * MiB,
          diskBytes: 20 * MiB,
          host: `toil-demouser-abc-${batch}`,
          pid: 7,
          ok,
        },
        cache: { hits: j % 3, misses: 1, hitBytes: (j % 3) * 10 * MiB, missBytes: 10 * MiB },
        place: {
          node,
          pod: `toil-demouser-abc-${batch}-x`,
          phases: { created, scheduled: created + 200, initialized: created + 700, started, finished: started + wall * 1000 },
        },
        ...(ok ? {} : { logTail: Array.from({ length: 20 }, (_, i) => `line ${i} <script>document.body.remove()</script>`).join('\n') }),
      });
    }
  }
  return {
    format: 'toil-ts-stats/1',
    workflowId: 'synthetic',
    workflowFile: 'synthetic.ts',
    batchSystem: 'kubernetes',
    runs: [{ leaderStart: t0 - 2000, firstIssue: t0, end: t0 + 3_700_000, ok: false }],
    attempts,
  };
}
