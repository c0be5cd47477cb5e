/** Host processes as the kubelet sees them: executables on a PATH, resident memory by namespace, signals to a group. */
import { accessSync, constants, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

export function resolveExe(exe: string, path: string): string | undefined {
  const ok = (f: string): boolean => {
    try {
      accessSync(f, constants.X_OK);
      return statSync(f).isFile();
    } catch {
      return false;
    }
  };
  if (exe.includes('/')) return ok(exe) ? exe : undefined;
  for (const d of path.split(delimiter)) {
    const f = join(d, exe);
    if (ok(f)) return f;
  }
  return undefined;
}

/** Resident memory (bytes) of every process, summed by a key from its pid and /proc/<pid>/stat fields after the name. */
export function residentMemoryBy(keyOf: (pid: string, stat: string[]) => string | undefined): Map<string, number> {
  const rss = new Map<string, number>();
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return rss;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const key = keyOf(e, f);
      if (key) rss.set(key, (rss.get(key) ?? 0) + Number(f[21]) * 4096);
    } catch {
      /* exited */
    }
  }
  return rss;
}

/** The namespace a process is in (`pid`) or gives its children (`pid_for_children`), e.g. "pid:[4026532]". */
export function nsLink(pid: string, which: 'pid' | 'pid_for_children'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${which}`);
  } catch {
    return undefined;
  }
}

export function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* gone */
    }
  }
}
