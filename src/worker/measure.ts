/**
 * What one job used, measured by its worker (a worker process runs one job at a time):
 *
 * - **CPU**: the worker process's own user + system time (`process.cpuUsage` deltas), plus that
 *   of its children that ended and were waited for during the job (`cutime` + `cstime` of
 *   /proc/self/stat, in clock ticks of 1/100 s, as Linux reports them to user space).
 * - **Peak memory**: the kernel's high-water mark of the worker's resident set (`VmHWM` in
 *   /proc/self/status), reset to the current resident set at the job's start by writing `5` to
 *   /proc/self/clear_refs, so that a warm worker process that ran a larger job before reports
 *   this job's own peak. Where the reset is refused (not Linux), the peak is the process's since
 *   it started, and `peakScope` says so. Children's memory is not included. What an earlier job
 *   left for the garbage collector would count as this job's: where the process allows it
 *   (single_machine's worker processes run with --expose-gc), a full collection comes first.
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** Linux reports process times to user space in ticks of 1/100 s (USER_HZ). */
const TICKS_PER_SECOND = 100;

export interface Measured {
  startedAt: number;
  wallSeconds: number;
  /** The worker's CPU and its children's. */
  cpuSeconds: number;
  /** The part of `cpuSeconds` used by child processes. */
  childCpuSeconds: number;
  /** Peak resident set in bytes. */
  peakRss: number;
  /** `job`: the peak since this job started; `process`: since the worker process started. */
  peakScope: 'job' | 'process';
}

export interface Measurement {
  finish(): Measured;
}

/** Starts measuring a job: its clocks now, and the memory high-water mark reset. */
export function startMeasuring(): Measurement {
  (globalThis as { gc?: () => void }).gc?.();
  const startedAt = Date.now();
  const cpu0 = process.cpuUsage();
  const children0 = childTicks();
  const peakScope = resetPeak() ? 'job' : 'process';
  return {
    finish(): Measured {
      const cpu = process.cpuUsage(cpu0);
      const children = Math.max(0, childTicks() - children0) / TICKS_PER_SECOND;
      return {
        startedAt,
        wallSeconds: (Date.now() - startedAt) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6 + children,
        childCpuSeconds: children,
        peakRss: peakRss(),
        peakScope,
      };
    },
  };
}

/** Children's CPU ticks so far (0 where /proc is not there). */
function childTicks(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command (which may hold spaces and parentheses) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[13]) + Number(fields[14]);
  } catch {
    return 0;
  }
}

function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: the process's own figure below
  }
  return process.resourceUsage().maxRSS * 1024;
}
