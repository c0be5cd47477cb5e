/**
 * Warm worker processes on this machine, running job after job: the one per-job path of
 * `single_machine` and of an executor (`toil worker --executor`, executors/executorMain.ts).
 * Whoever feeds the pool decides what fits; the pool runs what it is given:
 *
 * - **One job per process at a time.** A free process is reused; a new one is forked when none
 *   is free (or ahead of need: `warm`). A process is replaced after `jobsPerProcess` jobs (a
 *   leaking job cannot grow it forever). A job that ends its process (`process.exit`, a crash,
 *   a signal) ends only that process, and only that job fails.
 * - **Memory, per job.** With `memoryLimit`, the process running a job and everything it
 *   started are read every `memoryCheckMs` (processMemory.ts); a job whose resident set is over
 *   what it asked for is killed alone (its process tree, SIGKILL) and told so, before the pod's
 *   limit — the sum of its jobs' — could make the kernel choose a victim among its neighbours.
 * - **Disk, per job.** With `diskLimit`, the job's temporary directory (its worker process says
 *   which, as it makes it) is read every `diskCheckMs`; a job holding more than it asked for
 *   there is killed alone and told so, before the pod's storage limit — the sum of its jobs' —
 *   could make the kubelet evict the pod and every job in it.
 * - **Output.** The last lines each process printed are kept: what a job printed before it ended
 *   its process is its log when the worker could not save one.
 * - **Ends.** Each job's end is reported once, through `onEnd`, as a batch job end without the
 *   ids (`PoolEnd`), after the process's output is read to its end; a succeeded one carries the
 *   records the worker committed, when they are not too big (the leader need not read them).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatSize } from '../size.js';
import { processEndReason } from './processEnd.js';
import { treeBytes } from '../treeBytes.js';
import { processTree, treeResidentBytes } from './processMemory.js';
import type { BatchJobEnd, WorkerArgs, WorkerRecords } from './types.js';

/** A batch job's end as the pool tells it: everything but which batch job it was. */
export type PoolEnd = Omit<BatchJobEnd, 'batchJobId' | 'jobId'>;

export interface PoolRun {
  /** The caller's name for this run (its batch job id). */
  key: number;
  args: WorkerArgs;
  /** Bytes the job asked for: over it, the job is killed alone (undefined: not enforced). */
  memoryLimit?: number;
  /** Bytes of disk the job asked for: more in its temporary directory, and it is killed alone (undefined: not enforced). */
  diskLimit?: number;
}

export interface LocalPoolOptions {
  onEnd(key: number, end: PoolEnd): void;
  /** Jobs a worker process runs before it is replaced (default 500). */
  jobsPerProcess?: number;
  /** The worker process entry point (default: dist/worker/poolMain.js). */
  workerEntry?: string;
  env?: NodeJS.ProcessEnv;
  /** How often running jobs' memory is read, when any has a limit (default 250 ms). */
  memoryCheckMs?: number;
  /** How often running jobs' temporary directories are read, when any has a disk limit (default 1 s). */
  diskCheckMs?: number;
}

interface Proc {
  child: ChildProcess;
  busy?: Busy;
  jobsRun: number;
  tail: OutputTail;
}

/** A job the pool killed for using more than it was given. */
interface Over {
  kind: 'memory' | 'disk';
  used: number;
  limit: number;
}

interface Busy {
  run: PoolRun;
  /** When it was given to the process (ms since the epoch). */
  startedAt: number;
  /** Why the pool killed it, if it did. */
  killedFor?: { kind: 'leader' } | Over;
  /** The job's temporary directory, once its worker process has made it. */
  tempDir?: string;
}

/** Lines of a worker process's own output kept: what a job printed before it ended the process. */
const TAIL_LINES = 200;
/** Bytes of them kept at most (as a pod's log tail: podLogs.ts), a line longer than that cut to its end. */
const TAIL_BYTES = 32 * 1024;

/** The last lines a process printed, within TAIL_LINES and TAIL_BYTES (each line counted with its newline). */
class OutputTail {
  readonly lines: string[] = [];
  private bytes = 0;

  push(line: string): void {
    // A line cut within a character starts with a replacement character or two: room for them.
    const kept =
      Buffer.byteLength(line) < TAIL_BYTES
        ? line
        : Buffer.from(line)
            .subarray(-(TAIL_BYTES - 16))
            .toString();
    this.lines.push(kept);
    this.bytes += Buffer.byteLength(kept) + 1;
    while (this.lines.length > TAIL_LINES || this.bytes > TAIL_BYTES) this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
  }

  text(): string {
    return this.lines.join('\n');
  }
}

/** The compiled worker entry, also when this module runs from src/ (tests). */
export function defaultWorkerEntry(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, '../worker/poolMain.js'), path.join(here, '../../dist/worker/poolMain.js')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}

export class LocalPool {
  private readonly procs = new Set<Proc>();
  private readonly entry: string;
  private limitsTimer: NodeJS.Timeout | undefined;
  /** When the temporary directories were last read, and whether a reading is under way. */
  private diskRead = { at: 0, busy: false };
  private closed = false;

  constructor(private readonly opts: LocalPoolOptions) {
    this.entry = opts.workerEntry ?? defaultWorkerEntry();
  }

  /** Jobs running now. */
  get running(): number {
    let n = 0;
    for (const p of this.procs) if (p.busy) n++;
    return n;
  }

  has(key: number): boolean {
    for (const p of this.procs) if (p.busy?.run.key === key) return true;
    return false;
  }

  start(run: PoolRun): void {
    let proc: Proc | undefined;
    for (const p of this.procs) {
      if (!p.busy) {
        proc = p;
        break;
      }
    }
    proc ??= this.spawn();
    proc.busy = { run, startedAt: Date.now() };
    proc.tail = new OutputTail();
    proc.child.send({ type: 'run', batchJobId: run.key, args: run.args });
    if (run.memoryLimit !== undefined || run.diskLimit !== undefined) this.watchLimits();
  }

  /**
   * Starts processes until there are `n`, each opening the job store at `locator` and loading its
   * workflow: the first jobs find them ready.
   */
  warm(n: number, locator: string): void {
    while (!this.closed && this.procs.size < n) this.spawn().child.send({ type: 'warm', locator });
  }

  /** Kills a running job's process (its end says the leader killed it). False if it is not running. */
  kill(key: number): boolean {
    for (const p of this.procs) {
      if (p.busy?.run.key !== key) continue;
      p.busy.killedFor = { kind: 'leader' };
      killTree(p.child);
      return true;
    }
    return false;
  }

  /** Ends every process: idle ones asked to stop, busy ones killed; resolves when all are gone (at most 2 s). */
  async shutdown(): Promise<void> {
    this.closed = true;
    if (this.limitsTimer) clearInterval(this.limitsTimer);
    const exits = [...this.procs].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          if (p.busy) killTree(p.child);
          else p.child.kill('SIGTERM');
          setTimeout(() => {
            p.child.kill('SIGKILL');
            resolve();
          }, 2000).unref();
        }),
    );
    await Promise.all(exits);
    this.procs.clear();
  }

  private spawn(): Proc {
    const child = fork(this.entry, [], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // --expose-gc: a job's peak memory is measured from a collected heap (worker/measure.ts).
      execArgv: ['--expose-gc'],
      // More libuv threads: a job that creates many children does many small file operations.
      env: { UV_THREADPOOL_SIZE: '16', ...process.env, ...this.opts.env, TOIL_WORKER_PROCESS: '1' },
      serialization: 'json',
    });
    const proc: Proc = { child, jobsRun: 0, tail: new OutputTail() };
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        proc.tail.push(line);
      }
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('message', (m: unknown) => this.onMessage(proc, m));
    // The end is reported once the process's output is read to the end (what a job printed
    // before calling process.exit comes last), or soon after the exit if a grandchild holds
    // the pipes open.
    let ended = false;
    const end = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      this.onExit(proc, code, signal);
    };
    child.on('exit', (code, signal) => setTimeout(() => end(code, signal), 1000).unref());
    child.on('close', (code, signal) => end(code, signal));
    child.on('error', () => {
      /* reported through 'exit' */
    });
    this.procs.add(proc);
    return proc;
  }

  private onMessage(proc: Proc, m: unknown): void {
    if (typeof m !== 'object' || m === null) return;
    const msg = m as { type?: string; batchJobId?: number; code?: number; records?: WorkerRecords; dir?: unknown };
    const busy = proc.busy;
    if (msg.type === 'tempDir' && busy && busy.run.key === msg.batchJobId && typeof msg.dir === 'string') {
      busy.tempDir = msg.dir;
      return;
    }
    if (msg.type !== 'done' || !busy || busy.run.key !== msg.batchJobId || busy.killedFor) return;
    proc.busy = undefined;
    proc.jobsRun++;
    const code = typeof msg.code === 'number' ? msg.code : 1;
    const end: PoolEnd = {
      outcome: code === 0 ? 'succeeded' : 'failed',
      exitCode: code,
      countsAsAttempt: true,
      ...(code !== 0 && proc.tail.lines.length > 0 ? { outputTail: proc.tail.text() } : {}),
      ...(code === 0 && msg.records ? { records: msg.records } : {}),
      place: placeOf(proc, busy),
    };
    if (proc.jobsRun >= (this.opts.jobsPerProcess ?? 500)) {
      this.procs.delete(proc);
      proc.child.kill('SIGTERM');
    }
    this.opts.onEnd(busy.run.key, end);
  }

  private onExit(proc: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    this.procs.delete(proc);
    const busy = proc.busy;
    proc.busy = undefined;
    if (!busy) return;
    this.opts.onEnd(busy.run.key, exitEnd(proc, busy, { code, signal }));
  }

  /** Reads what running jobs with limits use (memory each tick, disk every `diskCheckMs`); kills the ones over. */
  private watchLimits(): void {
    if (this.limitsTimer || this.closed) return;
    this.limitsTimer = setInterval(() => {
      let watched = 0;
      for (const p of this.procs) {
        const run = p.busy?.run;
        if (!run || p.busy?.killedFor || p.child.pid === undefined) continue;
        if (run.memoryLimit === undefined && run.diskLimit === undefined) continue;
        watched++;
        const limit = run.memoryLimit;
        if (limit === undefined) continue;
        const used = treeResidentBytes(p.child.pid);
        if (used !== undefined && used > limit) this.killOver(p, { kind: 'memory', used, limit });
      }
      if (Date.now() - this.diskRead.at >= (this.opts.diskCheckMs ?? 1000)) void this.readDisks();
      if (watched === 0 && this.limitsTimer) {
        clearInterval(this.limitsTimer);
        this.limitsTimer = undefined;
      }
    }, this.opts.memoryCheckMs ?? 250);
    this.limitsTimer.unref();
  }

  /** Reads the temporary directory of every running job with a disk limit (one reading at a time). */
  private async readDisks(): Promise<void> {
    if (this.diskRead.busy) return;
    this.diskRead = { at: Date.now(), busy: true };
    try {
      for (const p of this.procs) {
        const busy = p.busy;
        const limit = busy?.run.diskLimit;
        if (!busy || limit === undefined || busy.tempDir === undefined || busy.killedFor) continue;
        const used = await treeBytes(busy.tempDir);
        if (used > limit && p.busy === busy && !busy.killedFor) this.killOver(p, { kind: 'disk', used, limit });
      }
    } finally {
      this.diskRead.busy = false;
    }
  }

  private killOver(p: Proc, over: Over): void {
    p.busy!.killedFor = over;
    killTree(p.child);
  }
}

/** The end of a job whose process ended under it. */
function exitEnd(proc: Proc, busy: Busy, exit: { code: number | null; signal: NodeJS.Signals | null }): PoolEnd {
  const killed = busy.killedFor;
  if (killed?.kind === 'leader') return { outcome: 'killed', exitCode: exit.code, message: 'killed by the leader', countsAsAttempt: false };
  const tail = proc.tail.lines.length > 0 ? { outputTail: proc.tail.text(), outputIsLog: true } : {};
  if (killed)
    return {
      outcome: killed.kind,
      exitCode: 137,
      message: overMessage(killed),
      countsAsAttempt: true,
      ...tail,
      place: placeOf(proc, busy),
    };
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return {
    outcome: 'failed',
    exitCode: exit.code ?? (exit.signal === 'SIGKILL' ? 137 : 1),
    message:
      processEndReason(proc.tail.lines) ??
      `the worker process ${how} while running the job${exit.signal === 'SIGKILL' ? ' (out of memory, or killed from outside)' : ''}`,
    countsAsAttempt: true,
    ...tail,
    place: placeOf(proc, busy),
  };
}

/** Why the pool killed a job for using more than it was given. */
function overMessage(o: Over): string {
  const used = formatSize(o.used);
  const limit = formatSize(o.limit);
  const alone = 'and was killed (alone: the jobs beside it run on)';
  if (o.kind === 'memory') return `the job used ${used} of memory, over the ${limit} it asked for, ${alone}`;
  return `out of disk: the job held ${used} in its temporary directory, over the ${limit} it was given, ${alone}; ask for more with require({ disk })`;
}

/** SIGKILL to a worker process and everything it started (read first: the children are orphaned once it dies). */
function killTree(child: ChildProcess): void {
  if (child.pid === undefined) return;
  for (const pid of processTree(child.pid).reverse()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone already */
    }
  }
}

/** Where a batch job ran (this host, the worker process) and when it started and ended there. */
function placeOf(proc: Proc, busy: Busy): NonNullable<BatchJobEnd['place']> {
  return {
    node: os.hostname(),
    ...(proc.child.pid !== undefined ? { pid: proc.child.pid } : {}),
    phases: { started: busy.startedAt, finished: Date.now() },
  };
}
