/** Helpers for test workflows: a trace file and per-name counters in a directory. */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function trace(dir: string, line: string): void {
  appendFileSync(path.join(dir, 'trace.log'), `${line}\n`);
}

/** Increments and returns the counter `name` (1 on the first call). */
export function bump(dir: string, name: string): number {
  const file = path.join(dir, `count-${name}`);
  let n = 0;
  try {
    n = Number(readFileSync(file, 'utf8'));
  } catch {
    /* first time */
  }
  writeFileSync(file, String(n + 1));
  return n + 1;
}

export function exists(dir: string, name: string): boolean {
  try {
    readFileSync(path.join(dir, name));
    return true;
  } catch {
    return false;
  }
}
