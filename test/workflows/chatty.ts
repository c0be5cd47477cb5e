/**
 * A chatty tool wrapper: thousands of long lines of progress, then the one line that says what
 * went wrong, then it ends its process (so the worker cannot save the log itself), or with
 * `throw` as the fourth argument, it throws that line as an error instead. Each attempt
 * numbers its lines, so a test can tell whose output it is shown. It waits for its output to be
 * written before it exits: Node queues writes to a full pipe, and drops those still queued when
 * the process exits.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { bump } from './trace.js';

const flushed = (stream: NodeJS.WriteStream) => new Promise<void>((resolve) => stream.write('', () => resolve()));

const chatty = defineJob('chatty', async (_ctx: JobContext, dir: string, lines: number, width: number, how: 'exit' | 'throw') => {
  const attempt = bump(dir, 'chatty');
  const filler = '.'.repeat(width);
  for (let i = 1; i <= lines; i++) process.stdout.write(`attempt ${attempt} progress ${i} ${filler}\n`);
  await flushed(process.stdout);
  if (how === 'throw') throw new Error(`FATAL (attempt ${attempt}): reference chr1.fa is truncated`);
  process.stderr.write(`FATAL (attempt ${attempt}): reference chr1.fa is truncated\n`);
  await flushed(process.stderr);
  process.exit(3);
});

export default function workflow(wf: WorkflowContext) {
  const [dir, lines, width, how] = wf.args as [string, string, string, string | undefined];
  return chatty(dir, Number(lines), Number(width), how === 'throw' ? 'throw' : 'exit');
}
