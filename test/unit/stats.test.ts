/** The pure parts of statistics: the advice's rules, a pod's phases, the trace line, the report's lanes. */
import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { podAccount } from '../../src/batch/podAccount.js';
import { niceSize, sizeText, spread, summarize } from '../../src/cli/statsSummary.js';
import { reportData } from '../../src/cli/reportData.js';
import { TRACE_HEADER, traceLine } from '../../src/leader/trace.js';
import type { AttemptStats, StatsData } from '../../src/leader/statsRecords.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function attempt(o: Partial<AttemptStats> & { jobId: string }): AttemptStats {
  return {
    jobName: 'count-chunk',
    attempt: 1,
    batchJobId: 1,
    status: 'succeeded',
    exitCode: 0,
    issuedAt: 1000,
    endedAt: 3000,
    requested: { cores: 1, memory: 2 * GiB, disk: 2 * GiB },
    wallSeconds: 1,
    cpuSeconds: 0.5,
    peakRss: 100 * MiB,
    ...o,
  };
}

const data = (attempts: AttemptStats[]): StatsData => ({
  format: 'toil-ts-stats/1',
  workflowId: 'w',
  runs: [{ leaderStart: 0, firstIssue: 1000, end: 10_000 }],
  attempts,
});

describe('the advice', () => {
  it('names the memory that would have sufficed: the largest peak and a quarter, rounded up as a user writes it', () => {
    const list = Array.from({ length: 16 }, (_, i) => attempt({ jobId: `c${i}`, peakRss: (100 + 5 * i) * MiB }));
    const [s] = summarize(data(list)).jobNames;
    expect(s!.advice).toBe('count-chunk asked for 2.0 GiB of memory and used at most 175 MiB in 16 attempts: 256Mi would do');
  });

  it('says to ask for more when an attempt was killed for memory, or the jobs used more than they asked', () => {
    const killed = summarize(data([attempt({ jobId: 'a', status: 'memory', peakRss: undefined }), attempt({ jobId: 'a', attempt: 2 })]));
    expect(killed.jobNames[0]!.advice).toMatch(
      /^count-chunk was killed for memory in 1 of 2 attempts asking for 2\.0 GiB: ask for more \(4Gi or so\)/,
    );
    const over = summarize(data([attempt({ jobId: 'a', requested: { cores: 1, memory: 256 * MiB, disk: 64 * MiB }, peakRss: 300 * MiB })]));
    expect(over.jobNames[0]!.advice).toBe('count-chunk asked for 256 MiB of memory and used up to 300 MiB in 1 attempt: ask for 384Mi');
  });

  it('says nothing of what fits, and nothing from a peak that is the process’s rather than the job’s', () => {
    const fits = attempt({ jobId: 'a', requested: { cores: 1, memory: 128 * MiB, disk: 64 * MiB }, peakRss: 100 * MiB });
    expect(summarize(data([fits])).jobNames[0]!.advice).toBeNull();
    const measured = {
      startedAt: 0,
      childCpuSeconds: 0,
      peakScope: 'process' as const,
      readBytes: 0,
      writtenBytes: 0,
      diskBytes: 0,
      host: 'h',
      pid: 1,
      ok: true,
    };
    const processPeak = attempt({ jobId: 'a', requested: { cores: 1, memory: 2 * GiB, disk: 64 * MiB }, measured });
    expect(summarize(data([processPeak])).jobNames[0]!.advice).toBeNull();
  });

  it('names the cores that would have sufficed when at most half of several were used', () => {
    const a = attempt({
      jobId: 'a',
      requested: { cores: 4, memory: 128 * MiB, disk: 64 * MiB },
      wallSeconds: 10,
      cpuSeconds: 11,
      peakRss: 100 * MiB,
    });
    expect(summarize(data([a])).jobNames[0]!.advice).toBe('count-chunk asked for 4 cores and used at most 1.1: 1.5 would do');
  });

  it('rounds sizes to 64Mi steps up to 1Gi, 256Mi steps up to 8Gi, then whole Gi', () => {
    expect([niceSize(1), niceSize(225 * MiB), niceSize(1.1 * GiB), niceSize(8.5 * GiB)].map(sizeText)).toEqual([
      '64Mi',
      '256Mi',
      '1280Mi',
      '9Gi',
    ]);
    expect(spread([3, 1, 2, 10])).toEqual({ min: 1, median: 2.5, max: 10, total: 16 });
  });
});

describe('a pod’s account', () => {
  /** An ISO time `s` seconds into the day of the fixtures, and the same in ms. */
  const iso = (s: number) => new Date(Date.UTC(2026, 0, 1) + s * 1000).toISOString();
  const t = (s: number) => Date.UTC(2026, 0, 1) + s * 1000;
  /** A pod created at 0 on node `n`, with these conditions (type, status, second) and its container run from `run[0]` to `run[1]`. */
  const endedPod = (conditions: Array<[string, string, number]>, run: [number, number]) =>
    ({
      metadata: { name: 'toil-x-1-abcde', creationTimestamp: iso(0) },
      spec: { nodeName: 'node-2', containers: [] },
      status: {
        conditions: conditions.map(([type, status, s]) => ({ type, status, lastTransitionTime: iso(s) })),
        containerStatuses: [{ name: 'worker', state: { terminated: { exitCode: 0, startedAt: iso(run[0]), finishedAt: iso(run[1]) } } }],
      },
    }) as unknown as V1Pod;

  it('reads the phases from the pod’s conditions and container state, and its node', () => {
    const pod = endedPod(
      [
        ['PodScheduled', 'True', 1],
        ['PodReadyToStartContainers', 'True', 3],
        ['Ready', 'False', 9],
      ],
      [5, 8],
    );
    expect(podAccount(pod)).toEqual({
      node: 'node-2',
      pod: 'toil-x-1-abcde',
      phases: { created: t(0), scheduled: t(1), initialized: t(3), started: t(5), finished: t(8) },
    });
  });

  it('takes a condition recorded after a later phase as reached at that phase, and Initialized once the sandbox is gone', () => {
    const pod = endedPod(
      [
        ['PodScheduled', 'True', 1],
        ['PodReadyToStartContainers', 'False', 9],
        ['Initialized', 'True', 6],
      ],
      [5, 8],
    );
    expect(podAccount(pod).phases).toEqual({ created: t(0), scheduled: t(1), initialized: t(5), started: t(5), finished: t(8) });
  });

  it('leaves out the phases a pod never reached', () => {
    const pending = {
      metadata: { name: 'p', creationTimestamp: new Date(5000) },
      spec: { containers: [] },
      status: { phase: 'Pending' },
    } as unknown as V1Pod;
    expect(podAccount(pending)).toEqual({ pod: 'p', phases: { created: 5000 } });
  });
});

describe('the trace and the report', () => {
  it('a trace line has a field per header column, text without tabs or newlines, unknown figures empty', () => {
    const line = traceLine(attempt({ jobId: 'j', jobName: 'odd\tname', message: 'x', wallSeconds: undefined, cpuSeconds: undefined }));
    const fields = line.split('\t');
    expect(fields).toHaveLength(TRACE_HEADER.split('\t').length);
    const col = (name: string) => fields[TRACE_HEADER.split('\t').indexOf(name)];
    expect(col('name')).toBe('odd name');
    expect(col('realtime_s')).toBe('');
    expect(col('memory')).toBe(String(2 * GiB));
  });

  it('puts overlapping attempts of a host in different lanes, the lanes in order of host and slot', () => {
    const m = (startedAt: number, host: string) => ({
      startedAt,
      childCpuSeconds: 0,
      peakScope: 'job' as const,
      readBytes: 0,
      writtenBytes: 0,
      diskBytes: 0,
      host,
      pid: 1,
      ok: true,
    });
    const d = reportData(
      data([
        attempt({ jobId: 'a', measured: m(1000, 'b-host'), wallSeconds: 5 }),
        attempt({ jobId: 'b', measured: m(2000, 'b-host'), wallSeconds: 1 }),
        attempt({ jobId: 'c', measured: m(7000, 'b-host'), wallSeconds: 1 }),
        attempt({ jobId: 'd', measured: m(1000, 'a-host'), wallSeconds: 1 }),
      ]),
      { title: 't' },
    );
    expect(d.lanes).toEqual(['a-host #1', 'b-host #1', 'b-host #2']);
    expect(d.timeline.map((r) => d.lanes[r[1]])).toEqual(['b-host #1', 'b-host #2', 'b-host #1', 'a-host #1']);
    expect(d.phaseNames).toEqual(['queued', 'running']);
  });
});
