/**
 * How jobs are packed into executors (pure). The rules:
 *
 * - **A shape** is a job's requirements rounded up: cores to the next half core, memory and disk
 *   to the next 256 MiB, preemptible or not. Jobs of one shape share executors; a job is given
 *   a slot of its shape, so a job never gets less than it asked for and neighbours never take
 *   more than theirs.
 * - **Slots.** An executor of a shape has k slots: the most of that shape that fit in one
 *   executor's bounds (`maxCores`, `maxMemory`, `maxDisk`), and at most `slots`. Its pod asks
 *   for k times the shape, and `EXECUTOR_OVERHEAD` more memory for the executor process itself.
 * - **A pod of its own**: a job with accelerators (GPUs are given to a pod whole), or one whose
 *   shape fits fewer than one slot in the bounds, runs as a worker Job of its own, as without
 *   executors.
 */
import type { ResolvedRequirements } from '../../job/types.js';

const MIB = 1024 * 1024;
/** Memory and disk are rounded up to this. */
export const SIZE_STEP = 256 * MIB;
/** Cores are rounded up to this. */
export const CORE_STEP = 0.5;
/** Memory an executor process needs besides its jobs'. */
export const EXECUTOR_OVERHEAD = 256 * MIB;

export interface ExecutorBounds {
  /** Most jobs at once in one executor. */
  slots: number;
  maxCores: number;
  maxMemory: number;
  maxDisk: number;
}

export interface Shape {
  key: string;
  /** What each slot gives its job. */
  slot: ResolvedRequirements;
  /** Slots per executor. */
  slots: number;
  /** What the executor's pod asks for. */
  pod: ResolvedRequirements;
}

const roundUp = (v: number, step: number) => Math.max(step, Math.ceil(v / step - 1e-9) * step);

/** The shape a job runs in, or undefined when it runs in a pod of its own. */
export function shapeOf(req: ResolvedRequirements, bounds: ExecutorBounds): Shape | undefined {
  if (req.accelerators.length > 0) return undefined;
  const slot: ResolvedRequirements = {
    cores: roundUp(req.cores, CORE_STEP),
    memory: roundUp(req.memory, SIZE_STEP),
    disk: roundUp(req.disk, SIZE_STEP),
    accelerators: [],
    preemptible: req.preemptible,
  };
  const slots = Math.min(
    bounds.slots,
    Math.floor(bounds.maxCores / slot.cores + 1e-9),
    Math.floor((bounds.maxMemory - EXECUTOR_OVERHEAD) / slot.memory),
    Math.floor(bounds.maxDisk / slot.disk),
  );
  if (slots < 1) return undefined;
  const key = `${slot.cores}c-${slot.memory / MIB}m-${slot.disk / MIB}d${slot.preemptible ? '-p' : ''}`;
  return {
    key,
    slot,
    slots,
    pod: {
      cores: slot.cores * slots,
      memory: slot.memory * slots + EXECUTOR_OVERHEAD,
      disk: slot.disk * slots,
      accelerators: [],
      preemptible: slot.preemptible,
    },
  };
}
