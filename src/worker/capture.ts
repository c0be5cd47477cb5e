/**
 * Capturing a job's output inside the worker process: writes to process.stdout and
 * process.stderr (console.* included) and `ctx.log` lines are collected while the job runs.
 * With `echo`, they are also passed through (a worker pod's own log shows them). Their start
 * and their end are kept, within a bound (HEAD_MAX + TAIL_MAX). If the job ends the process
 * (`process.exit`, an uncaught exception), what it printed is written to the real stderr before
 * the process goes, with a last line saying how it ended.
 */
import { writeSync } from 'node:fs';
import { processEndLine } from '../batch/processEnd.js';

/**
 * What is kept of a job's output: its first and its last half MiB (characters), with a line
 * saying how much was left out between them. A chatty job's end — its final error, and the
 * failure line the worker adds — is what its reader needs most, so the end is always kept.
 */
const HEAD_MAX = 512 * 1024;
const TAIL_MAX = 512 * 1024;

export class OutputCapture {
  private head: string[] = [];
  private headSize = 0;
  private tail: string[] = [];
  private tailSize = 0;
  private leftOut = 0;
  private restore: (() => void) | undefined;

  private uncaught: string | undefined;
  private readonly onUncaught = (e: unknown) => {
    this.uncaught = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  };
  private readonly onExit = (code: number) => {
    const how = this.uncaught === undefined ? { exitCode: code } : { uncaught: this.uncaught };
    const kept = this.echo ? '' : this.text();
    writeSync(2, `${kept}${kept === '' || kept.endsWith('\n') ? '' : '\n'}${processEndLine(this.label, how)}\n`);
  };

  /** `label` names the job in the line written if it ends the process. */
  constructor(
    private readonly echo: boolean,
    private readonly label: string,
  ) {}

  start(): void {
    process.on('uncaughtExceptionMonitor', this.onUncaught);
    process.on('exit', this.onExit);
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const wrap = (orig: typeof out) =>
      ((chunk: string | Uint8Array, ...rest: unknown[]) => {
        this.add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
        if (this.echo) return (orig as (...a: unknown[]) => boolean)(chunk, ...rest);
        const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        if (cb) queueMicrotask(cb);
        return true;
      }) as typeof out;
    process.stdout.write = wrap(out);
    process.stderr.write = wrap(err);
    this.restore = () => {
      process.stdout.write = out;
      process.stderr.write = err;
    };
  }

  add(text: string): void {
    if (this.headSize < HEAD_MAX) {
      const part = text.slice(0, HEAD_MAX - this.headSize);
      this.head.push(part);
      this.headSize += part.length;
      text = text.slice(part.length);
    }
    if (text === '') return;
    this.tail.push(text);
    this.tailSize += text.length;
    // Drop from the front of the tail what no longer fits.
    while (this.tailSize > TAIL_MAX) {
      const first = this.tail[0]!;
      const over = this.tailSize - TAIL_MAX;
      if (first.length <= over) this.tail.shift();
      else this.tail[0] = first.slice(over);
      const dropped = Math.min(first.length, over);
      this.tailSize -= dropped;
      this.leftOut += dropped;
    }
  }

  stop(): void {
    process.off('uncaughtExceptionMonitor', this.onUncaught);
    process.off('exit', this.onExit);
    this.restore?.();
    this.restore = undefined;
  }

  text(): string {
    const gap = this.leftOut > 0 ? `\n[${this.leftOut} characters of output left out]\n` : '';
    return this.head.join('') + gap + this.tail.join('');
  }
}
