/**
 * The jobs the batch system conformance suite runs in real workers. Each that takes a while
 * writes `<name>.started` (holding its process id) in a directory the test can read, and
 * `<name>.finished` when it gets to the end.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineJob, type JobContext } from 'toil-ts';

function mark(dir: string, name: string, what: 'started' | 'finished'): void {
  writeFileSync(path.join(dir, `${name}.${what}`), String(process.pid));
}

/** Returns its argument. */
export const answer = defineJob('answer', async (_ctx: JobContext, value: number) => value);

/** Sleeps `ms` milliseconds, marking its start and its end. */
export const nap = defineJob('nap', async (_ctx: JobContext, dir: string, name: string, ms: number) => {
  mark(dir, name, 'started');
  await new Promise((r) => setTimeout(r, ms));
  mark(dir, name, 'finished');
  return ms;
});

/** Takes its worker process down with process.exit(code). */
export const exitWith = defineJob('exit-with', async (_ctx: JobContext, code: number) => {
  process.stderr.write(`exit-with: leaving with code ${code}\n`);
  process.exit(code);
});

/** Kills its own worker process with SIGKILL. */
export const killSelf = defineJob('kill-self', async () => {
  process.kill(process.pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 10_000));
  return 'unreachable';
});
