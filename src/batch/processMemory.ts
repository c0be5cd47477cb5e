/**
 * The memory a process and everything it started use right now: the sum of the resident sets of
 * the process and its descendants, read from /proc (`/proc/<pid>/task/<tid>/children` for the
 * tree, `/proc/<pid>/statm` for each resident set, in pages). A process that ends while it is
 * read counts as nothing. Where /proc is not there (not Linux) the answer is undefined: nothing
 * can be enforced from it.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Bytes per page as the kernel counts resident sets; 4 KiB on every Linux this runs on (x86-64, arm64 with 4K pages). */
const PAGE_BYTES = 4096;

/** The pids of a process's children (all its threads'), or [] if it has ended. */
function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) if (c.trim() !== '') out.push(Number(c));
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

function residentBytes(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return Number(fields[1] ?? 0) * PAGE_BYTES;
  } catch {
    return 0;
  }
}

/** The process and its descendants, the process first. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && out.length < 10_000; i++) out.push(...childrenOf(out[i]!));
  return out;
}

/** Bytes resident in the process and its descendants, or undefined where /proc cannot tell. */
export function treeResidentBytes(pid: number): number | undefined {
  try {
    readFileSync(`/proc/${pid}/statm`);
  } catch {
    return undefined;
  }
  return processTree(pid).reduce((sum, p) => sum + residentBytes(p), 0);
}
