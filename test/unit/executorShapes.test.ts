/** How jobs are packed into executors (src/batch/executors/shapes.ts). */
import { describe, expect, it } from '@jest/globals';
import { EXECUTOR_OVERHEAD, shapeOf, type ExecutorBounds } from '../../src/batch/executors/shapes.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const bounds: ExecutorBounds = { slots: 4, maxCores: 4, maxMemory: 16 * GiB, maxDisk: 64 * GiB };
const req = (r: Partial<ResolvedRequirements>): ResolvedRequirements => ({
  cores: 1,
  memory: 2 * GiB,
  disk: 2 * GiB,
  accelerators: [],
  preemptible: false,
  ...r,
});

describe('executor shapes', () => {
  it('rounds a job up to its slot: half cores, 256 MiB of memory and disk', () => {
    const s = shapeOf(req({ cores: 0.3, memory: 300 * MiB, disk: 1 }), bounds)!;
    expect(s.slot).toMatchObject({ cores: 0.5, memory: 512 * MiB, disk: 256 * MiB });
    expect(s.key).toBe('0.5c-512m-256d');
  });

  it('gives jobs of one shape one key, and preemptible jobs another', () => {
    expect(shapeOf(req({ memory: 1900 * MiB }), bounds)!.key).toBe(shapeOf(req({ memory: 2 * GiB }), bounds)!.key);
    expect(shapeOf(req({ preemptible: true }), bounds)!.key).not.toBe(shapeOf(req({}), bounds)!.key);
  });

  it('has as many slots as fit the bounds, at most the slots asked for; the pod asks for their sum and the overhead', () => {
    expect(shapeOf(req({ cores: 0.5, memory: 512 * MiB }), bounds)!.slots).toBe(4);
    const big = shapeOf(req({ cores: 2, memory: 6 * GiB }), bounds)!;
    expect(big.slots).toBe(2);
    expect(big.pod).toMatchObject({ cores: 4, memory: 12 * GiB + EXECUTOR_OVERHEAD, disk: 4 * GiB });
    expect(shapeOf(req({ memory: 7 * GiB }), bounds)!.slots).toBe(2);
  });

  it('gives a job with GPUs, or one bigger than an executor, no shape: a pod of its own', () => {
    expect(shapeOf(req({ accelerators: [{ count: 1, kind: 'gpu' }] }), bounds)).toBeUndefined();
    expect(shapeOf(req({ cores: 8 }), bounds)).toBeUndefined();
    expect(shapeOf(req({ memory: 16 * GiB }), bounds)).toBeUndefined();
  });
});
