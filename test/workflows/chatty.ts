/**
 * A chatty tool wrapper: thousands of long lines of progress, then the one line that says what
 * went wrong, then it ends its process (so the worker cannot save the log itself). Each attempt
 * numbers its lines, so a test can tell whose output it is shown. The fourth argument says how
 * it ends: `exit` (the default) waits for its output to be written before it exits,
 * `exit-at-once` exits at once (Node queues writes to a full pipe, and drops those still queued
 * when the process exits, unless the worker writes them), `throw` throws its final error.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump } from './trace.js';

const HOW = ['exit', 'exit-at-once', 'throw'] as const;

const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

const chatty = defineJob('chatty', async (_ctx: JobContext, dir: string, lines: number, width: number, how: (typeof HOW)[number]) => {
  const attempt = bump(dir, 'chatty');
  const filler = '.'.repeat(width);
  for (let i = 1; i <= lines; i++) process.stdout.write(`attempt ${attempt} progress ${i} ${filler}\n`);
  if (how !== 'exit-at-once') await flushed(process.stdout);
  if (how === 'throw') throw new Error(`FATAL (attempt ${attempt}): reference chr1.fa is truncated`);
  process.stderr.write(`FATAL (attempt ${attempt}): reference chr1.fa is truncated\n`);
  if (how !== 'exit-at-once') await flushed(process.stderr);
  process.exit(3);
});

export default function workflow(wf: WorkflowContext) {
  const [dir, lines, width, how] = wf.args as [string, string, string, string | undefined];
  return chatty(dir, Number(lines), Number(width), HOW.find((h) => h === how) ?? 'exit');
}
