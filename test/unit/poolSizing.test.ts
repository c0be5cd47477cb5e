/** How big an executor pool grows and how many jobs each executor is given (src/batch/executors/poolSizing.ts). */
import { describe, expect, it } from '@jest/globals';
import {
  canJudge,
  executorsToAdd,
  executorsToAddByRate,
  GROW_HORIZON_MS,
  JUDGE_ENDS,
  jobsPerExecutor,
  judgeGrowth,
  LEARN_MS,
  MAX_QUEUED,
  Paces,
  RATE_WINDOW_MS,
  rateOfEnds,
  START_WAIT_MS,
  UNDO_GAIN,
  waitsToBeJudged,
  type ShapeLoad,
} from '../../src/batch/executors/poolSizing.js';

const load = (
  o: Partial<Omit<ShapeLoad, 'waiting' | 'held'>> & { waiting: Record<string, number>; held?: Record<string, number> },
): ShapeLoad => ({
  slots: 4,
  executors: 1,
  pace: () => undefined,
  runningFor: () => undefined,
  ...o,
  waiting: new Map(Object.entries(o.waiting)),
  held: new Map(Object.entries(o.held ?? {})),
});

describe('executor pool sizing', () => {
  it('makes the first executor of a shape as soon as a job waits, none for nothing', () => {
    expect(executorsToAdd(load({ executors: 0, waiting: { a: 1 } }))).toBe(1);
    expect(executorsToAdd(load({ executors: 0, waiting: {} }))).toBe(0);
  });

  it('learns a new name’s pace before paying for pods: none while its job has run under LEARN_MS', () => {
    expect(executorsToAdd(load({ waiting: { a: 1000 }, runningFor: () => LEARN_MS / 2 }))).toBe(0);
    // Past LEARN_MS without ending, or with none running: taken as long, a slot per job.
    expect(executorsToAdd(load({ waiting: { a: 40 }, runningFor: () => LEARN_MS + 1 }))).toBe(9);
    expect(executorsToAdd(load({ waiting: { a: 40 } }))).toBe(9);
  });

  it('adds as many as bring the waiting work under the horizon at the known pace', () => {
    // 1000 jobs of 100 ms on 4-slot executors: 100 s of work, 40 s per executor per horizon → 3.
    expect(executorsToAdd(load({ waiting: { a: 1000 }, pace: () => 100 }))).toBe(2);
    expect(executorsToAdd(load({ executors: 3, waiting: { a: 1000 }, pace: () => 100 }))).toBe(0);
    // Work that the pool runs within the horizon adds nothing.
    expect(executorsToAdd(load({ waiting: { a: 10 }, pace: () => GROW_HORIZON_MS / 10 }))).toBe(0);
  });

  it('counts the work already on executors: a busy executor does not run what waits', () => {
    // One 1-slot executor busy with a long job, two more waiting: two more executors.
    expect(executorsToAdd(load({ slots: 1, waiting: { nap: 2 }, held: { nap: 1 }, runningFor: () => LEARN_MS + 1 }))).toBe(2);
    // While the first of a new name is learnt, what it holds does not make the pool grow.
    expect(executorsToAdd(load({ waiting: { one: 990 }, held: { one: 4 }, runningFor: () => 10 }))).toBe(0);
  });

  it('judges a growth a window after its executors started: paid, held, or not yet', () => {
    const g = { before: 40, had: 2, added: 2, madeAt: 0, allStartedAt: 1000 };
    expect(judgeGrowth({ ...g, allStartedAt: undefined }, 100, START_WAIT_MS - 1)).toBe('wait');
    // an executor that never starts (no node for its pod) does not hold the shape back for good
    expect(judgeGrowth({ ...g, allStartedAt: undefined }, 100, START_WAIT_MS)).toBe('unjudged');
    expect(judgeGrowth(g, 100, 1000 + RATE_WINDOW_MS - 1)).toBe('wait');
    // Promised +40/s: at least half of it (60/s) pays.
    expect(judgeGrowth(g, 60, 1000 + RATE_WINDOW_MS)).toBe('paid');
    expect(judgeGrowth(g, 59, 1000 + RATE_WINDOW_MS)).toBe('held');
    // Less than UNDO_GAIN more, or fewer: the growth is undone.
    expect(judgeGrowth(g, 40 * (1 + UNDO_GAIN), 1000 + RATE_WINDOW_MS)).toBe('held');
    expect(judgeGrowth(g, 43.9, 1000 + RATE_WINDOW_MS)).toBe('undone');
    expect(judgeGrowth(g, 30, 1000 + RATE_WINDOW_MS)).toBe('undone');
  });

  it('judges by ends only once they have come for about a whole window, and often enough', () => {
    const steady = Array.from({ length: JUDGE_ENDS }, (_, i) => (i * RATE_WINDOW_MS) / JUDGE_ENDS);
    expect(canJudge(steady, RATE_WINDOW_MS)).toBe(true);
    // as many ends, all in the last half second: the rate is still climbing
    const burst = steady.map((t) => RATE_WINDOW_MS - 500 + t / 10);
    expect(canJudge(burst, RATE_WINDOW_MS)).toBe(false);
    expect(canJudge(steady.slice(1), RATE_WINDOW_MS)).toBe(false);
  });

  it('lets a growth of short jobs wait to be judged, not one with long or unknown jobs or no started executor', () => {
    const paces: Record<string, number> = { short: 50, long: 5000 };
    const l = (waiting: Record<string, number>, held: Record<string, number>) => load({ waiting, held, pace: (n) => paces[n] });
    expect(waitsToBeJudged(l({ short: 900 }, { short: 16 }), 1, false)).toBe(true);
    expect(waitsToBeJudged(l({ short: 900 }, { short: 16 }), 1, true)).toBe(false);
    expect(waitsToBeJudged(l({ short: 900 }, { short: 16 }), 0, false)).toBe(false);
    // a long job running: ends may not come for a while
    expect(waitsToBeJudged(l({ short: 900 }, { long: 4 }), 1, false)).toBe(false);
    expect(waitsToBeJudged(l({ new: 3 }, { short: 4 }), 1, false)).toBe(false);
  });

  it('adds executors of short jobs by the rate the started ones end jobs at', () => {
    const paces: Record<string, number> = { short: 20, long: 5000 };
    const l = (waiting: Record<string, number>, held: Record<string, number>, executors = 1) =>
      load({ waiting, held, executors, pace: (n) => paces[n] });
    // 1 executor ends 70 jobs/s: 2,984 waiting + 16 held take 43 s, so 5 are needed
    expect(executorsToAddByRate(l({ short: 2984 }, { short: 16 }), 1, 70)).toBe(4);
    // 984 + 16 take 14 s: within twice the horizon, not worth a pod start and a judging
    expect(executorsToAddByRate(l({ short: 984 }, { short: 16 }), 1, 70)).toBe(0);
    // by the jobs' own pace one executor would do: 1000 × 20 ms over 4 slots is 5 s
    expect(executorsToAdd(l({ short: 984 }, { short: 16 }))).toBe(0);
    // nothing waits, none started, or a long job among them: not by the rate
    expect(executorsToAddByRate(l({}, { short: 16 }), 1, 70)).toBe(0);
    expect(executorsToAddByRate(l({ short: 2984 }, {}, 0), 0, 70)).toBe(0);
    expect(executorsToAddByRate(l({ short: 2984 }, { long: 4 }), 1, 70)).toBe(0);
  });

  it('counts the rate of ends over the last window only', () => {
    const times = [0, 600, RATE_WINDOW_MS, RATE_WINDOW_MS + 500];
    expect(rateOfEnds(times, RATE_WINDOW_MS + 500)).toBeCloseTo((3 * 1000) / RATE_WINDOW_MS);
    expect(times).toHaveLength(3);
  });

  it('queues short jobs on an executor, a slot’s worth to MAX_QUEUED, and long ones not at all', () => {
    expect(jobsPerExecutor(4, undefined)).toBe(4);
    expect(jobsPerExecutor(4, 5000)).toBe(4);
    expect(jobsPerExecutor(4, 20)).toBe(4 * (1 + MAX_QUEUED));
    expect(jobsPerExecutor(4, 50)).toBe(36);
    expect(jobsPerExecutor(4, 100)).toBe(20);
    expect(jobsPerExecutor(4, 300)).toBe(12);
    expect(jobsPerExecutor(4, 900)).toBe(8);
  });

  it('keeps moving averages that follow the recent samples', () => {
    const p = new Paces();
    p.add('a', 6000);
    for (let i = 0; i < 40; i++) p.add('a', 100);
    expect(p.get('a')).toBeLessThan(200);
    expect(p.get('b')).toBeUndefined();
  });
});
