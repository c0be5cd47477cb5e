/**
 * What workers tell the leader about their jobs, and what the leader shows of a failed attempt.
 *
 * - Messages, from the job store's channel: a job's log lines are relayed to the leader's log as
 *   they come; why an attempt failed (the error the job threw: its message and the workflow's own
 *   stack frames) is kept until that attempt's end is processed; cache and time figures go to the
 *   cache report, the debug log and the attempts' account (statsRecorder.ts).
 * - A failed attempt's log: the job's output as the worker saved it (or, when it could not, the
 *   batch system's tail of the worker's output), without the lines the worker added about the
 *   failure — the leader shows those apart, once (jobFailure.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BatchJobEnd } from '../batch/types.js';
import { errorMessage } from '../errors.js';
import { jobLabel, withoutFailureLines, type JobFailure } from '../jobFailure.js';
import type { ChannelMessage, JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import type { CacheReport } from './cacheReport.js';

/** What a worker may have said about a failed attempt. */
export type ToldFailure = Partial<JobFailure>;

export class WorkerReports {
  /** Why attempts failed, as their workers told, until processed. */
  private readonly told = new Map<string, ToldFailure>();

  constructor(
    private readonly store: JobStore,
    private readonly log: Logger,
    private readonly cacheReport: CacheReport,
    /** Where stats messages go besides the cache report (the attempts' account). */
    private readonly onStats?: (m: ChannelMessage) => void,
  ) {}

  /** Takes the pending messages: log lines to the log, failures kept, figures to the cache report. */
  async relay(): Promise<void> {
    try {
      for (const m of await this.store.receiveMessages()) {
        if (m.kind === 'log' && m.text !== undefined) {
          const level = m.level === 'warning' ? 'warning' : 'info';
          for (const line of m.text.split('\n')) this.log[level](`[${m.jobName} ${m.jobId}] ${line}`);
        } else if (m.kind === 'failure') {
          this.told.set(m.jobId, { text: m.text, stack: m.stack });
        } else if (m.kind === 'stats') {
          if (m.cache) this.cacheReport.add(m.cache);
          this.onStats?.(m);
          if (m.wallSeconds !== undefined)
            this.log.debug(`[${m.jobName} ${m.jobId}] ${m.wallSeconds?.toFixed(3)}s wall, ${m.cpuSeconds?.toFixed(3)}s CPU`);
        }
      }
    } catch (e) {
      this.log.warning(`cannot read worker messages: ${errorMessage(e)}`);
    }
  }

  /** What the worker said about why the job's latest attempt failed, if it said (taken: asked once per attempt). */
  async toldFailure(jobId: string): Promise<ToldFailure | undefined> {
    await this.relay();
    const told = this.told.get(jobId);
    this.told.delete(jobId);
    return told;
  }

  /** Forgets what was told of a job that has since succeeded. */
  forget(jobId: string): void {
    this.told.delete(jobId);
  }

  /**
   * The last `lines` lines of a failed attempt's log, without the worker's lines about the
   * failure when it told the leader of it (`told`).
   */
  async logTail(
    job: { id: string; name: string },
    o: { end?: BatchJobEnd | undefined; told?: ToldFailure | undefined; lines: number },
  ): Promise<string> {
    let text = (await this.store.readJobLog(job.id).catch(() => undefined)) ?? o.end?.outputTail ?? '';
    if (o.told?.text !== undefined) text = withoutFailureLines(text, jobLabel(job.name, job.id), { text: o.told.text });
    return text.trimEnd().split('\n').slice(-o.lines).join('\n');
  }

  /** Copies a job's log into `dir` (--writeLogs) as `<name>_<id>.log`. */
  async copyLog(dir: string, job: { id: string; name: string }): Promise<void> {
    const text = await this.store.readJobLog(job.id).catch(() => undefined);
    if (text === undefined) return;
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `${job.name}_${job.id}.log`), text);
  }
}
