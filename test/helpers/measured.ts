/**
 * What --stats must have measured of test/workflows/measured.ts, with the tolerances stated here
 * (the machine may be busy: CPU figures are of CPU time the jobs use by design, wall figures
 * only ever bounded generously from above).
 */
import { expect } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import type { AttemptStats, StatsData } from '../../src/leader/statsRecords.js';

const MiB = 2 ** 20;

export async function readStatsFile(file: string): Promise<StatsData> {
  return JSON.parse(await readFile(file, 'utf8')) as StatsData;
}

function only(data: StatsData, name: string): AttemptStats {
  const list = data.attempts.filter((a) => a.jobName === name);
  expect(list).toHaveLength(1);
  return list[0]!;
}

export function expectKnownWork(data: StatsData): Record<'burn' | 'hog' | 'nap' | 'scribble' | 'root', AttemptStats> {
  expect(data.attempts).toHaveLength(5);
  for (const a of data.attempts) expect(a).toMatchObject({ status: 'succeeded', exitCode: 0, attempt: 1 });
  const burn = only(data, 'burn');
  // 1 s in the worker and 1 s in its child, plus the worker's own work and the child's start: 2.0–2.8 s
  expect(burn.cpuSeconds).toBeGreaterThanOrEqual(1.95);
  expect(burn.cpuSeconds).toBeLessThanOrEqual(2.8);
  expect(burn.measured!.childCpuSeconds).toBeGreaterThanOrEqual(0.95);
  expect(burn.measured!.childCpuSeconds).toBeLessThanOrEqual(1.4);
  expect(burn.requested).toEqual({ cores: 1, memory: 512 * MiB, disk: expect.any(Number) });
  const hog = only(data, 'hog');
  // 300 MiB on top of the worker's own 40–250 MiB, the peak of this job alone
  expect(hog.measured!.peakScope).toBe('job');
  expect(hog.peakRss).toBeGreaterThanOrEqual(300 * MiB + 30 * MiB);
  expect(hog.peakRss).toBeLessThanOrEqual(300 * MiB + 250 * MiB);
  for (const name of ['root', 'burn', 'nap', 'scribble']) expect(only(data, name).peakRss).toBeLessThan(280 * MiB);
  const nap = only(data, 'nap');
  // 3 s asleep: 3.0 s of wall time at least, and at most 2 s more however busy the machine is; little CPU
  expect(nap.wallSeconds).toBeGreaterThanOrEqual(3.0);
  expect(nap.wallSeconds).toBeLessThanOrEqual(5.0);
  expect(nap.cpuSeconds).toBeLessThan(0.5);
  const scribble = only(data, 'scribble');
  // exactly the file's bytes to the job store, and the file in its temporary directory at the end
  expect(scribble.measured!.writtenBytes).toBe(50_000_000);
  expect(scribble.measured!.diskBytes).toBeGreaterThanOrEqual(50_000_000);
  expect(only(data, 'root').measured!.writtenBytes).toBe(0);
  // the run's own timeline: leader start ≤ first issue ≤ every attempt ≤ end
  expect(data.runs).toHaveLength(1);
  const run = data.runs[0]!;
  expect(run.firstIssue).toBeGreaterThanOrEqual(run.leaderStart);
  for (const a of data.attempts) {
    expect(a.issuedAt).toBeGreaterThanOrEqual(run.firstIssue!);
    expect(a.endedAt).toBeLessThanOrEqual(run.end!);
  }
  return { burn, hog, nap, scribble, root: only(data, 'root') };
}
