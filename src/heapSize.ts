/**
 * Sizing the leader's V8 heap to its container. Node's default old-space limit is a quarter of
 * the memory it sees (at most 4 GiB), so in a 4 GiB pod a leader would die of heap exhaustion
 * at 1 GiB while three are unused — or, in a pod whose limit is below what the node has and
 * that Node does not see, be OOM-killed with nothing said. The leader instead asks for the
 * container's limit less room for the rest of the process (code, new space, buffers, the
 * bundler and type-check children at start).
 *
 * The limit comes from, first, `TOIL_MEMORY_LIMIT` (bytes; the manifests set it from the
 * downward API's `limits.memory`), then cgroup v2's `memory.max`, then cgroup v1's
 * `memory.limit_in_bytes`. None, or "max" (no limit): the heap is left to Node.
 *
 * Pure functions of what was read; bin/toil.js does the reading and the re-exec, using nothing
 * but the language, before the rest of the CLI is loaded.
 */

export const MEMORY_LIMIT_ENV = 'TOIL_MEMORY_LIMIT';
/** Set on the re-executed leader: the heap size it was given, in MiB, and from what. */
export const HEAP_SIZED_ENV = 'TOIL_HEAP_SIZED';

export const CGROUP_FILES = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'];

const MIB = 2 ** 20;
/** cgroup v1 says "no limit" with a huge number (the largest page-aligned 63-bit value). */
const UNLIMITED = 2 ** 60;

export interface MemoryLimit {
  bytes: number;
  /** Where it was read, for the log. */
  source: string;
}

/** The container's memory limit from the variable or the cgroup files' contents (undefined: unreadable). */
export function memoryLimit(env: Record<string, string | undefined>, cgroup: Array<string | undefined>): MemoryLimit | undefined {
  const fromEnv = env[MEMORY_LIMIT_ENV]?.trim();
  if (fromEnv && /^\d+$/.test(fromEnv) && Number(fromEnv) > 0) return { bytes: Number(fromEnv), source: MEMORY_LIMIT_ENV };
  for (let i = 0; i < cgroup.length; i++) {
    const text = cgroup[i]?.trim();
    if (text === undefined || !/^\d+$/.test(text)) continue;
    const bytes = Number(text);
    if (bytes > 0 && bytes < UNLIMITED) return { bytes, source: CGROUP_FILES[i] ?? 'cgroup' };
  }
  return undefined;
}

/**
 * The old-space size (MiB) for a container limit: the limit less a quarter of it, the quarter
 * at least 192 MiB and at most 1 GiB; never below 64 MiB.
 */
export function heapMiBFor(limitBytes: number): number {
  const limit = limitBytes / MIB;
  const room = Math.min(1024, Math.max(192, limit / 4));
  return Math.max(64, Math.floor(limit - room));
}

/** Whether Node was already told its heap size (flags or NODE_OPTIONS): then it is left alone. */
export function heapSizeGiven(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const given = (a: string) => /^--max[-_]old[-_]space[-_]size(-percentage)?(=|$)/.test(a);
  return execArgv.some(given) || (nodeOptions ?? '').split(/\s+/).some(given);
}
