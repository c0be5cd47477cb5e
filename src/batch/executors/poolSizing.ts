/**
 * How big the pool of executors of one shape should be, and how many jobs each is given (pure). A
 * new executor costs a pod start; it is worth it only when the executors there would take long to
 * run what waits. The rules:
 *
 * - **Pace.** A job name's pace (per shape) is the mean time its jobs ran on executors, as the
 *   executors measured it (a moving average weighing about the last dozen).
 * - **Learning first.** The first executor of a shape is made as soon as one of its jobs waits.
 *   For a name whose pace is not known yet, no executor is added while one of its jobs has run
 *   for less than `LEARN_MS`: its end comes soon and tells the pace (a pod start is not paid on a
 *   guess). A name none of whose jobs runs, or whose job has run past `LEARN_MS` without ending,
 *   is taken as long: a slot for each of its waiting jobs.
 * - **Enough for the horizon.** The work of the waiting jobs and of those on executors (each its
 *   name's pace; a job of a name not known yet, the whole horizon) is spread over the executors
 *   of the shape, started or starting: while it would take them longer than `GROW_HORIZON_MS`
 *   (about a pod's start and warm-up; a later executor would come too late to help), executors
 *   are added, as many as bring it under. The caller bounds how many start at once and in all.
 * - **By the rate, for short jobs.** Where every job of a shape is short and its ends can judge a
 *   growth (below), the rate its started executors end jobs at is also what one more would add:
 *   when what waits and what is held would take them more than twice the horizon, executors are
 *   added to bring it within the horizon (an executor's round trips and the job store's answers
 *   are part of its pace; the jobs' run times alone understate it).
 * - **Growth must pay, where it can be judged.** Where jobs of a shape end often (at least
 *   `JUDGE_ENDS` in the last `RATE_WINDOW_MS`, and for about that long), the rate they end at
 *   shows within seconds whether more executors help: executors added to a shape that had started
 *   ones are judged `RATE_WINDOW_MS` after the last of its executors started, by the rate of ends
 *   over that window against the window before they were made; such a growth at most doubles the
 *   started executors. Until it is judged no more are added; if the rate rose by less than half
 *   of what they promised (so the bottleneck is elsewhere: the job store, the leader, the nodes'
 *   CPU), the shape is held at that many executors for `HOLD_MS`; if it rose by less than
 *   `UNDO_GAIN` (or fell: executors that share the nodes' CPU can slow each other), the growth is
 *   undone — the added executors take no more jobs and stop once theirs are done — and the shape
 *   is held at the size it had. A growth whose executors have not all started within
 *   `START_WAIT_MS` (a pod that finds no node) is not judged: it no longer holds the shape back.
 *   Where every job held and waiting is of a name known to be short (under `SHORT_JOB_MS`), ends
 *   soon come often enough: a growth waits until they do, so that it is judged against the rate
 *   the started executors reach (not added on a guess right after the first ends, as the rate
 *   climbs). Jobs that end seldom (long ones) cannot be judged so; their slots are what they
 *   need.
 * - **Short jobs queue on their executor.** Once jobs of a name are seen to take less than
 *   `SHORT_JOB_MS` on average, an executor is given more than its slots for them: enough queued
 *   to keep its slots busy for `ROUND_TRIP_MS` (its ends going up, the next jobs coming down), at
 *   least one slot's worth and at most `MAX_QUEUED` (a round trip through the job store takes a
 *   few hundred ms, in which a slot runs a dozen jobs of 20 ms). The next job is there the moment
 *   a slot frees, and the leader's messages carry several jobs each. Longer jobs get free slots
 *   only, so none waits behind a long one while another executor could start it.
 */

/** The executors of a shape are enough if they would run what waits within this. */
export const GROW_HORIZON_MS = 10_000;
/** How long a job of an unknown pace may run before its name is taken as long. */
export const LEARN_MS = 1000;
/** Jobs of a name shorter than this on average are queued on their executors. */
export const SHORT_JOB_MS = 1000;
/** How long an executor's queue should last: its ends read, its next jobs written and read. */
export const ROUND_TRIP_MS = 400;
/** The most slots' worth of short jobs queued on an executor beyond its slots. */
export const MAX_QUEUED = 8;
/** The window over which the rate of ends is measured, before and after a growth. */
export const RATE_WINDOW_MS = 3000;
/** Ends in the window before a growth for it to be judged. */
export const JUDGE_ENDS = 20;
/** How long a shape whose growth did not pay is held at its size. */
export const HOLD_MS = 60_000;
/** A growth that raised the rate of ends by less than this fraction is undone. */
export const UNDO_GAIN = 0.1;
/** How long a growth waits for its executors to start before it is given up as not to be judged. */
export const START_WAIT_MS = 30_000;
/** The weight of a new sample in a moving average: about the last dozen count. */
const WEIGHT = 1 / 8;

/** Moving averages of run times, by key (a shape and a job name). */
export class Paces {
  private readonly mean = new Map<string, number>();

  add(key: string, ms: number): void {
    const m = this.mean.get(key);
    this.mean.set(key, m === undefined ? ms : m + (ms - m) * WEIGHT);
  }

  get(key: string): number | undefined {
    return this.mean.get(key);
  }
}

/** What waits and what runs for one shape. */
export interface ShapeLoad {
  /** Slots of one executor of the shape. */
  slots: number;
  /** Executors of the shape started or starting, not told to stop. */
  executors: number;
  /** Waiting jobs by name. */
  waiting: ReadonlyMap<string, number>;
  /** Jobs given to executors of the shape (running or queued there), by name. */
  held: ReadonlyMap<string, number>;
  /** The known pace of a name's jobs, ms. */
  pace(name: string): number | undefined;
  /** How long the longest-running job of a name has run, ms (undefined: none runs). */
  runningFor(name: string): number | undefined;
}

/** Executors of the shape to add now (before the caller's bounds). */
export function executorsToAdd(load: ShapeLoad): number {
  let waiting = 0;
  for (const n of load.waiting.values()) waiting += n;
  if (waiting === 0) return 0;
  if (load.executors === 0) return 1;
  let work = 0;
  for (const [name, n] of load.held) work += n * (load.pace(name) ?? GROW_HORIZON_MS);
  for (const [name, n] of load.waiting) {
    const pace = load.pace(name);
    if (pace !== undefined) {
      work += n * pace;
      continue;
    }
    const ran = load.runningFor(name);
    if (ran !== undefined && ran < LEARN_MS) continue;
    work += n * GROW_HORIZON_MS;
  }
  const need = Math.ceil(work / (load.slots * GROW_HORIZON_MS));
  return Math.max(0, need - load.executors);
}

/** Whether every job held or waiting for a shape is of a name known to be short. */
function allShort(load: ShapeLoad): boolean {
  const short = (name: string) => (load.pace(name) ?? SHORT_JOB_MS) < SHORT_JOB_MS;
  return [...load.waiting.keys(), ...load.held.keys()].every(short);
}

/**
 * Whether a growth of a shape waits until it can be judged: executors have started and every job
 * held or waiting is of a name known to be short, so ends will soon come often enough.
 */
export function waitsToBeJudged(load: ShapeLoad, started: number, judgeable: boolean): boolean {
  return started > 0 && !judgeable && allShort(load);
}

/**
 * Executors of a shape of short jobs to add by the rate its `started` executors end jobs at
 * (`rate`, per second, over a window that can judge): enough for what is held and waits to end
 * within the horizon at that rate per executor. An executor's pace is also its round trips,
 * its process starts and the job store's answers, which the jobs' own run times do not show.
 */
export function executorsToAddByRate(load: ShapeLoad, started: number, rate: number): number {
  if (started === 0 || rate <= 0 || !allShort(load)) return 0;
  let jobs = 0;
  for (const n of load.waiting.values()) jobs += n;
  if (jobs === 0) return 0;
  for (const n of load.held.values()) jobs += n;
  // A pod start and a judging window are paid before a new executor helps: only worth it when
  // the executors there would take twice the horizon.
  if ((jobs * 1000) / rate < 2 * GROW_HORIZON_MS) return 0;
  const perExecutor = rate / started;
  return Math.max(0, Math.ceil(jobs / ((perExecutor * GROW_HORIZON_MS) / 1000)) - load.executors);
}

/** A growth of a shape's pool being judged (see the rules). */
export interface Growth {
  /** Ends per second over the window before it. */
  before: number;
  /** Started executors of the shape when it was made. */
  had: number;
  added: number;
  /** When it was made. */
  madeAt: number;
  /** When the last of the added started (undefined: not all have). */
  allStartedAt?: number;
}

/**
 * The verdict on a growth at `now`, given the rate of ends over the last window: 'wait' (not
 * judged yet), 'paid', 'held', 'undone', or 'unjudged' (its executors did not all start in time).
 */
export function judgeGrowth(g: Growth, rateNow: number, now: number): 'wait' | 'paid' | 'held' | 'undone' | 'unjudged' {
  if (g.allStartedAt === undefined) return now - g.madeAt >= START_WAIT_MS ? 'unjudged' : 'wait';
  if (now - g.allStartedAt < RATE_WINDOW_MS) return 'wait';
  if (g.had === 0) return 'paid';
  const promised = g.before * (g.added / g.had);
  if (rateNow >= g.before + promised / 2) return 'paid';
  return rateNow < g.before * (1 + UNDO_GAIN) ? 'undone' : 'held';
}

/**
 * Whether the times of a shape's ends (ms, oldest first, within the window) can judge a growth:
 * at least `JUDGE_ENDS`, and coming for about the whole window (ends that began a moment ago
 * would understate the rate the growth is measured against).
 */
export function canJudge(times: readonly number[], now: number): boolean {
  const oldest = times[0];
  return times.length >= JUDGE_ENDS && oldest !== undefined && now - oldest >= 0.9 * RATE_WINDOW_MS;
}

/** Drops the times of ends (ms, oldest first) older than `RATE_WINDOW_MS`. */
export function trimToWindow(times: number[], now: number): void {
  while (times.length > 0 && now - times[0]! > RATE_WINDOW_MS) times.shift();
}

/** Ends per second over the last `RATE_WINDOW_MS`, from the times of ends (ms), oldest first; drops older ones. */
export function rateOfEnds(times: number[], now: number): number {
  trimToWindow(times, now);
  return (times.length * 1000) / RATE_WINDOW_MS;
}

/** Jobs an executor is given at most, for a job of a name of this pace: its slots, and a queue for short jobs. */
export function jobsPerExecutor(slots: number, pace: number | undefined): number {
  if (pace === undefined || pace >= SHORT_JOB_MS) return slots;
  const queued = Math.min(MAX_QUEUED, Math.max(1, Math.ceil(ROUND_TRIP_MS / Math.max(1, pace))));
  return slots * (1 + queued);
}
