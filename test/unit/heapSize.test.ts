/** Sizing the leader's heap from the container's memory limit (pure: what was read in, a size out). */
import { describe, expect, it } from '@jest/globals';
import { heapMiBFor, heapSizeGiven, memoryLimit } from '../../src/heapSize.js';

const MIB = 2 ** 20;

describe('the leader heap size', () => {
  it('takes the limit from TOIL_MEMORY_LIMIT first, then cgroup v2, then v1; "max" and v1\'s huge number are no limit', () => {
    expect(memoryLimit({ TOIL_MEMORY_LIMIT: String(512 * MIB) }, [String(4096 * MIB)])).toEqual({
      bytes: 512 * MIB,
      source: 'TOIL_MEMORY_LIMIT',
    });
    expect(memoryLimit({}, ['max\n', `${1024 * MIB}\n`])).toEqual({
      bytes: 1024 * MIB,
      source: '/sys/fs/cgroup/memory/memory.limit_in_bytes',
    });
    expect(memoryLimit({}, [`${2048 * MIB}\n`, undefined])).toEqual({ bytes: 2048 * MIB, source: '/sys/fs/cgroup/memory.max' });
    expect(memoryLimit({}, [undefined, '9223372036854771712\n'])).toBeUndefined();
    expect(memoryLimit({ TOIL_MEMORY_LIMIT: 'lots' }, ['max'])).toBeUndefined();
  });

  it('leaves a quarter of the limit for the rest of the process, at least 192 MiB and at most 1 GiB', () => {
    expect(heapMiBFor(512 * MIB)).toBe(320);
    expect(heapMiBFor(4096 * MIB)).toBe(3072);
    expect(heapMiBFor(16384 * MIB)).toBe(15360);
    expect(heapMiBFor(200 * MIB)).toBe(64);
  });

  it('is left to the user who gave --max-old-space-size, as a flag or in NODE_OPTIONS', () => {
    expect(heapSizeGiven(['--max-old-space-size=300'], undefined)).toBe(true);
    expect(heapSizeGiven([], '--enable-source-maps --max_old_space_size=300')).toBe(true);
    expect(heapSizeGiven(['--enable-source-maps'], '--max-semi-space-size=64')).toBe(false);
  });
});
