/**
 * The `single_machine` batch system: batch jobs run as local processes within --maxCores,
 * --maxMemory, --maxDisk and --maxJobs. Worker processes are kept warm and reused for job after
 * job; a job that crashes its process (or calls process.exit) fails alone, and the process is
 * replaced.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResourceError } from '../errors.js';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';
import { formatSize } from '../size.js';
import { EndQueue } from './endQueue.js';
import { processEndReason } from './processEnd.js';
import type { AttemptPlace, BatchJobEnd, BatchJobRequest, BatchSystem } from './types.js';

export interface SingleMachineOptions {
  maxCores: number;
  maxMemory: number;
  maxDisk: number;
  /** Most batch jobs running at once. */
  maxJobs: number;
  /** GPUs this machine offers (default 0). */
  gpus?: number;
  /** Jobs a worker process runs before it is replaced (default 500). */
  jobsPerProcess?: number;
  /** The worker process entry point (default: dist/worker/poolMain.js). */
  workerEntry?: string;
  env?: NodeJS.ProcessEnv;
}

interface Proc {
  child: ChildProcess;
  busy?: Running;
  jobsRun: number;
  tail: string[];
}

interface Running {
  batchJobId: number;
  req: BatchJobRequest;
  killed: boolean;
}

/** Lines of a worker process's own output kept: what a job printed before it ended the process. */
const TAIL_LINES = 200;

/** The compiled worker entry, also when this module runs from src/ (tests). */
export function defaultWorkerEntry(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, '../worker/poolMain.js'), path.join(here, '../../dist/worker/poolMain.js')];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}

export class SingleMachineBatchSystem implements BatchSystem {
  readonly name = 'single_machine';
  private readonly queue: Array<{ batchJobId: number; req: BatchJobRequest }> = [];
  private readonly procs = new Set<Proc>();
  private readonly ends = new EndQueue();
  private nextId = 1;
  private used = { cores: 0, memory: 0, disk: 0, gpus: 0, jobs: 0 };
  private readonly entry: string;
  private closed = false;

  constructor(private readonly opts: SingleMachineOptions) {
    this.entry = opts.workerEntry ?? defaultWorkerEntry();
  }

  checkFits(req: ResolvedRequirements, what: string): void {
    const o = this.opts;
    const gpus = gpuCount(req);
    if (req.cores > o.maxCores)
      throw new ResourceError(`${what} asks for ${req.cores} cores, but at most ${o.maxCores} are available (--maxCores)`);
    if (req.memory > o.maxMemory) {
      throw new ResourceError(
        `${what} asks for ${formatSize(req.memory)} of memory, but at most ${formatSize(o.maxMemory)} is available (--maxMemory)`,
        { resource: 'memory' },
      );
    }
    if (req.disk > o.maxDisk) {
      throw new ResourceError(
        `${what} asks for ${formatSize(req.disk)} of disk, but at most ${formatSize(o.maxDisk)} is available (--maxDisk)`,
        { resource: 'disk' },
      );
    }
    if (gpus > (o.gpus ?? 0)) throw new ResourceError(`${what} asks for ${gpus} GPU(s), but this machine offers ${o.gpus ?? 0}`);
  }

  async issue(req: BatchJobRequest): Promise<number> {
    this.checkFits(req.requirements, `job '${req.jobName}' (${req.jobId})`);
    const batchJobId = this.nextId++;
    this.queue.push({ batchJobId, req });
    this.pump();
    return batchJobId;
  }

  private fits(r: ResolvedRequirements): boolean {
    const o = this.opts;
    const u = this.used;
    return (
      u.jobs < o.maxJobs &&
      u.cores + r.cores <= o.maxCores + 1e-9 &&
      u.memory + r.memory <= o.maxMemory &&
      u.disk + r.disk <= o.maxDisk &&
      u.gpus + gpuCount(r) <= (o.gpus ?? 0)
    );
  }

  private account(r: ResolvedRequirements, sign: 1 | -1): void {
    this.used.cores += sign * r.cores;
    this.used.memory += sign * r.memory;
    this.used.disk += sign * r.disk;
    this.used.gpus += sign * gpuCount(r);
    this.used.jobs += sign;
  }

  /** Starts queued jobs that fit, in order, looking a bounded distance past one that does not. */
  private pump(): void {
    if (this.closed) return;
    let skipped = 0;
    for (let i = 0; i < this.queue.length && skipped < 64;) {
      const item = this.queue[i]!;
      if (this.fits(item.req.requirements)) {
        this.queue.splice(i, 1);
        this.start(item.batchJobId, item.req);
      } else {
        skipped++;
        i++;
      }
      if (this.used.jobs >= this.opts.maxJobs) break;
    }
  }

  private start(batchJobId: number, req: BatchJobRequest): void {
    this.account(req.requirements, 1);
    let proc: Proc | undefined;
    for (const p of this.procs) {
      if (!p.busy) {
        proc = p;
        break;
      }
    }
    proc ??= this.spawn();
    proc.busy = { batchJobId, req, killed: false };
    proc.tail = [];
    proc.child.send({ type: 'run', batchJobId, args: req.worker });
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
    const proc: Proc = { child, jobsRun: 0, tail: [] };
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (line.trim() === '') continue;
        proc.tail.push(line);
        if (proc.tail.length > TAIL_LINES) proc.tail.shift();
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
    const msg = m as { type?: string; batchJobId?: number; code?: number };
    if (msg.type !== 'done' || !proc.busy || proc.busy.batchJobId !== msg.batchJobId) return;
    const run = proc.busy;
    proc.busy = undefined;
    proc.jobsRun++;
    this.account(run.req.requirements, -1);
    const code = typeof msg.code === 'number' ? msg.code : 1;
    this.ends.push({
      batchJobId: run.batchJobId,
      jobId: run.req.jobId,
      outcome: code === 0 ? 'succeeded' : 'failed',
      exitCode: code,
      countsAsAttempt: true,
      ...(code !== 0 && proc.tail.length > 0 ? { outputTail: proc.tail.join('\n') } : {}),
      place: placeOf(proc),
    });
    if (proc.jobsRun >= (this.opts.jobsPerProcess ?? 500)) {
      this.procs.delete(proc);
      proc.child.kill('SIGTERM');
    }
    this.pump();
  }

  private onExit(proc: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    this.procs.delete(proc);
    const run = proc.busy;
    proc.busy = undefined;
    if (!run) return;
    this.account(run.req.requirements, -1);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const told = processEndReason(proc.tail);
    const end: BatchJobEnd = run.killed
      ? {
          batchJobId: run.batchJobId,
          jobId: run.req.jobId,
          outcome: 'killed',
          exitCode: code,
          message: 'killed by the leader',
          countsAsAttempt: false,
        }
      : {
          batchJobId: run.batchJobId,
          jobId: run.req.jobId,
          outcome: 'failed',
          exitCode: code ?? (signal === 'SIGKILL' ? 137 : 1),
          message:
            told ??
            `the worker process ${how} while running the job${signal === 'SIGKILL' ? ' (out of memory, or killed from outside)' : ''}`,
          countsAsAttempt: true,
          ...(proc.tail.length > 0 ? { outputTail: proc.tail.join('\n'), outputIsLog: true } : {}),
          place: placeOf(proc),
        };
    this.ends.push(end);
    this.pump();
  }

  async kill(batchJobIds: number[]): Promise<void> {
    const ids = new Set(batchJobIds);
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const item = this.queue[i]!;
      if (ids.has(item.batchJobId)) {
        this.queue.splice(i, 1);
        this.ends.push({
          batchJobId: item.batchJobId,
          jobId: item.req.jobId,
          outcome: 'killed',
          exitCode: null,
          message: 'killed before it started',
          countsAsAttempt: false,
        });
      }
    }
    for (const p of this.procs) {
      if (p.busy && ids.has(p.busy.batchJobId)) {
        p.busy.killed = true;
        p.child.kill('SIGKILL');
      }
    }
  }

  nextEnd(timeoutMs: number, signal?: AbortSignal): Promise<BatchJobEnd | undefined> {
    return this.ends.next(timeoutMs, signal);
  }

  issuedCount(): number {
    return this.queue.length + this.used.jobs;
  }

  runningCount(): number {
    return this.used.jobs;
  }

  knows(batchJobId: number): boolean {
    if (this.ends.has(batchJobId) || this.queue.some((q) => q.batchJobId === batchJobId)) return true;
    for (const p of this.procs) if (p.busy?.batchJobId === batchJobId) return true;
    return false;
  }

  /** Nothing to read again: this batch system sees its processes end. */
  async resync(): Promise<void> {}

  waitingFor(): string | undefined {
    if (this.queue.length === 0) return undefined;
    const o = this.opts;
    const u = this.used;
    return `${this.queue.length} waiting for room on this machine (${u.jobs} running: ${u.cores}/${o.maxCores} cores, ${formatSize(u.memory)}/${formatSize(o.maxMemory)} memory in use)`;
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    const exits = [...this.procs].map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.child.exitCode !== null || p.child.signalCode !== null) return resolve();
          p.child.once('exit', () => resolve());
          p.child.kill(p.busy ? 'SIGKILL' : 'SIGTERM');
          setTimeout(() => {
            p.child.kill('SIGKILL');
            resolve();
          }, 2000).unref();
        }),
    );
    await Promise.all(exits);
    this.procs.clear();
  }
}

/** Defaults for this machine: all cores, all memory, the free disk under `dir`. */
export async function machineResources(dir: string): Promise<{ cores: number; memory: number; disk: number }> {
  const { statfs, mkdir } = await import('node:fs/promises');
  await mkdir(dir, { recursive: true }).catch(() => undefined);
  let disk = Number.MAX_SAFE_INTEGER;
  try {
    const s = await statfs(dir);
    disk = s.bavail * s.bsize;
  } catch {
    /* keep unlimited */
  }
  return { cores: os.availableParallelism(), memory: os.totalmem(), disk };
}

/** Where a batch job ran: this host, and the worker process. */
function placeOf(proc: Proc): AttemptPlace {
  return { node: os.hostname(), ...(proc.child.pid !== undefined ? { pid: proc.child.pid } : {}) };
}
