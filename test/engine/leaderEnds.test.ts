/**
 * Every batch job end reaches the leader, whatever else wakes it. The batch system here is a
 * scripted stand-in with the real one's contract (ends come through `nextEnd`, asynchronously,
 * from a real EndQueue); the store is a real file job store; the leader is the real one. The
 * script decides when each job's "worker" commits its record, as a worker would, and when its
 * end is reported — so the orders that are rare on a real cluster are made on purpose.
 */
import { describe, expect, it } from '@jest/globals';
import { EndQueue } from '../../src/batch/endQueue.js';
import type { BatchJobEnd, BatchJobRequest, BatchSystem } from '../../src/batch/types.js';
import type { JobRecord } from '../../src/job/types.js';
import { Leader, type LeaderConfig, type LeaderResult } from '../../src/leader/leader.js';
import { openJobStore } from '../../src/jobstore/open.js';
import type { JobStore } from '../../src/jobstore/types.js';
import type { WorkflowInfo } from '../../src/jobstore/workflowInfo.js';
import { createLogger } from '../../src/log.js';
import { useTempStore } from '../helpers/tempStore.js';

type OnIssue = (req: BatchJobRequest, batchJobId: number, attempt: number) => void;

/** A batch system whose jobs do what the test's script says, when it says. */
class ScriptedBatch implements BatchSystem {
  readonly name = 'scripted';
  private readonly ends = new EndQueue();
  private readonly live = new Map<number, string>();
  private readonly attempts = new Map<string, number>();
  private nextId = 1;

  constructor(private readonly onIssue: OnIssue) {}

  checkFits(): void {}

  async issue(req: BatchJobRequest): Promise<number> {
    const id = this.nextId++;
    const attempt = (this.attempts.get(req.jobId) ?? 0) + 1;
    this.attempts.set(req.jobId, attempt);
    this.live.set(id, req.jobId);
    this.onIssue(req, id, attempt);
    return id;
  }

  /** Loses a batch job: it ends and its end is never reported (a lost event, a bug). */
  lose(batchJobId: number): void {
    this.live.delete(batchJobId);
  }

  readonly killed: number[] = [];

  /** Reports a batch job's end, as the real systems do: later, from an event. */
  end(batchJobId: number, end: Omit<BatchJobEnd, 'batchJobId' | 'jobId'>): void {
    const jobId = this.live.get(batchJobId);
    if (jobId === undefined) return;
    this.live.delete(batchJobId);
    this.ends.push({ batchJobId, jobId, ...end });
  }

  async kill(ids: number[]): Promise<void> {
    this.killed.push(...ids);
    for (const id of ids) this.end(id, { outcome: 'killed', exitCode: null, countsAsAttempt: false });
  }

  nextEnd(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined> {
    return this.ends.next(timeoutMs, signal);
  }

  issuedCount(): number {
    return this.live.size;
  }

  runningCount(): number {
    return this.live.size;
  }

  knows(batchJobId: number): boolean {
    return this.live.has(batchJobId) || this.ends.has(batchJobId);
  }

  async resync(): Promise<void> {}

  waitingFor(): string | undefined {
    return undefined;
  }

  async shutdown(): Promise<void> {}
}

function record(id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    id,
    name: id,
    kind: 'function',
    payload: [],
    requirements: {},
    checkpoint: false,
    children: [],
    followOns: [],
    staticChildren: 0,
    staticFollowOns: 0,
    predecessors: [],
    promiseDeps: [],
    state: 'pending',
    remainingTries: null,
    attempts: 0,
    ...over,
  };
}

/** What a worker does when its job succeeds: the record says done, with a value. */
async function commitDone(store: JobStore, id: string): Promise<void> {
  const cur = await store.loadJob(id);
  await store.updateJob({ ...cur.value, state: 'done', result: `${id} ok` }, cur.version);
}

/** A store holding a finished root whose children are `kids`, and the workflow facts the leader needs. */
async function storeWithChildren(locator: string, kids: string[]): Promise<{ store: JobStore; info: WorkflowInfo }> {
  const store = await openJobStore(locator);
  await store.create();
  await store.createJob(record('root', { state: 'done', children: kids, staticChildren: kids.length, result: null }));
  for (const k of kids) await store.createJob(record(k, { predecessors: ['root'] }));
  const info: WorkflowInfo = {
    workflowId: 'wf-ends',
    rootJobId: 'root',
    bundleHash: 'none',
    workflowFile: 'none',
    createdAt: new Date().toISOString(),
    defaults: { cores: 1, memory: 1 << 20, disk: 1 << 20, preemptible: false },
    exports: [],
  };
  return { store, info };
}

async function leaderFor(store: JobStore, batch: BatchSystem, info: WorkflowInfo, over: Partial<LeaderConfig> = {}): Promise<Leader> {
  const leader = new Leader(store, batch, info, {
    retryCount: 2,
    backoff: { baseMs: 50, maxMs: 50 },
    maxJobs: 100,
    defaults: info.defaults,
    logger: createLogger('critical'),
    tty: false,
    statusIntervalMs: 60_000,
    ...over,
  });
  await leader.load({ restart: false });
  return leader;
}

/** The leader's result, or 'hung' if it has not ended within `ms` (then it is stopped). */
async function runWithin(leader: Leader, ms: number): Promise<LeaderResult | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const run = leader.run();
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  const first = await Promise.race([run, hung]);
  clearTimeout(timer);
  if (first === 'hung') {
    leader.stop('the test gave up');
    await run;
  }
  return first;
}

describe('the leader and its batch system', () => {
  const tmp = useTempStore();

  it("takes an end reported while a retry's timer has woken it (the end is never handed to a wait it gave up)", async () => {
    const { store, info } = await storeWithChildren(tmp.store, ['steady', 'flaky']);
    let steadyBatchId = 0;
    const batch: ScriptedBatch = new ScriptedBatch((req, id, attempt) => {
      if (req.jobId === 'steady') steadyBatchId = id;
      if (req.jobId !== 'flaky') return;
      if (attempt === 1) {
        // The steady job's worker commits its record; then the flaky job's first try fails: the
        // leader sets a retry timer (25–50 ms) and waits for ends.
        void commitDone(store, 'steady').then(() => batch.end(id, { outcome: 'failed', exitCode: 1, countsAsAttempt: true }));
        return;
      }
      // The timer woke the leader, which issues the retry; while it does (a slow create, on a
      // real cluster), the steady job's end is reported.
      batch.end(steadyBatchId, { outcome: 'succeeded', exitCode: 0, countsAsAttempt: true });
      setTimeout(() => {
        void commitDone(store, 'flaky').then(() => batch.end(id, { outcome: 'succeeded', exitCode: 0, countsAsAttempt: true }));
      }, 100);
    });
    const result = await runWithin(await leaderFor(store, batch, info), 15_000);
    expect(result).toMatchObject({ ok: true });
    await store.destroy();
  });

  it('finds a job whose end the batch system lost, at the next reconciliation, and takes its outcome from the job store', async () => {
    const { store, info } = await storeWithChildren(tmp.store, ['lost']);
    const batch: ScriptedBatch = new ScriptedBatch((_req, id) => {
      void commitDone(store, 'lost').then(() => batch.lose(id));
    });
    const lines: string[] = [];
    const leader = await leaderFor(store, batch, info, { reconcileIntervalMs: 1000, logger: captureLogger(lines) });
    const started = Date.now();
    expect(await runWithin(leader, 15_000)).toMatchObject({ ok: true, jobsRun: 1 });
    expect(Date.now() - started).toBeLessThan(5000);
    expect(lines.join('\n')).toMatch(
      /batch job 1 of job 'lost' \(lost\) ended, but its end never reached the leader; reading its outcome from the job store/,
    );
    await store.destroy();
  });

  it('takes a job the job store says is done as done when its batch job never says it ended, and ends that batch job', async () => {
    const { store, info } = await storeWithChildren(tmp.store, ['silent', 'other']);
    const batch: ScriptedBatch = new ScriptedBatch((req, id) => {
      // 'silent' commits and its batch job never reports; 'other' ends normally a little later.
      if (req.jobId === 'silent') void commitDone(store, 'silent');
      else
        setTimeout(
          () => void commitDone(store, 'other').then(() => batch.end(id, { outcome: 'succeeded', exitCode: 0, countsAsAttempt: true })),
          300,
        );
    });
    const lines: string[] = [];
    const leader = await leaderFor(store, batch, info, { reconcileIntervalMs: 1000, logger: captureLogger(lines) });
    expect(await runWithin(leader, 15_000)).toMatchObject({ ok: true, jobsRun: 2 });
    expect(batch.killed).toEqual([1]);
    expect(lines.join('\n')).toMatch(
      /job 'silent' \(silent\) is done in the job store, but its batch job 1 \(issued \d+s ago\) has not said it ended; taking it as done/,
    );
    await store.destroy();
  });
});

/** A logger whose lines (warnings and worse) go to `lines`. */
function captureLogger(lines: string[]) {
  return createLogger('warning', (l) => lines.push(l));
}
