/**
 * The `single_machine` batch system: batch jobs run as local processes within --maxCores,
 * --maxMemory, --maxDisk and --maxJobs. Worker processes are kept warm and reused for job after
 * job; a job that crashes its process (or calls process.exit) fails alone, and the process is
 * replaced.
 */
import os from 'node:os';
import { ResourceError } from '../errors.js';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';
import { formatSize } from '../size.js';
import { EndQueue } from './endQueue.js';
import { LocalPool, type PoolEnd } from './localPool.js';
import type { BatchJobEnd, BatchJobRequest, BatchSystem } from './types.js';

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
  /** Kill a job whose memory goes over what it asked for (default false: jobs share the machine's memory). */
  enforceMemory?: boolean;
}

export class SingleMachineBatchSystem implements BatchSystem {
  readonly name = 'single_machine';
  private readonly queue: Array<{ batchJobId: number; req: BatchJobRequest }> = [];
  /** The batch jobs running in the pool, by batch job id. */
  private readonly running = new Map<number, BatchJobRequest>();
  private readonly pool: LocalPool;
  private readonly ends = new EndQueue();
  private nextId = 1;
  private used = { cores: 0, memory: 0, disk: 0, gpus: 0, jobs: 0 };
  private closed = false;

  constructor(private readonly opts: SingleMachineOptions) {
    this.pool = new LocalPool({
      onEnd: (key, end) => this.onEnd(key, end),
      ...(opts.jobsPerProcess !== undefined ? { jobsPerProcess: opts.jobsPerProcess } : {}),
      ...(opts.workerEntry !== undefined ? { workerEntry: opts.workerEntry } : {}),
      ...(opts.env !== undefined ? { env: opts.env } : {}),
    });
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
    this.running.set(batchJobId, req);
    this.pool.start({
      key: batchJobId,
      args: req.worker,
      ...(this.opts.enforceMemory ? { memoryLimit: req.requirements.memory } : {}),
    });
  }

  private onEnd(batchJobId: number, end: PoolEnd): void {
    const req = this.running.get(batchJobId);
    if (!req) return;
    this.running.delete(batchJobId);
    this.account(req.requirements, -1);
    this.ends.push({ batchJobId, jobId: req.jobId, ...end });
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
    for (const id of ids) this.pool.kill(id);
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
    return this.ends.has(batchJobId) || this.running.has(batchJobId) || this.queue.some((q) => q.batchJobId === batchJobId);
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
    await this.pool.shutdown();
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
