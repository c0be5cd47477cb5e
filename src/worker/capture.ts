/**
 * Capturing a job's output inside the worker process: writes to process.stdout and
 * process.stderr (console.* included) and `ctx.log` lines are collected while the job runs.
 * With `echo`, they are also passed through (a worker pod's own log shows them). If the job
 * ends the process (`process.exit`, an uncaught exception), what it printed is written to the
 * real stderr before the process goes, with a last line saying how it ended.
 */
import { writeSync } from 'node:fs';
import { processEndLine } from '../batch/processEnd.js';

const MAX_CAPTURE = 1024 * 1024;

export class OutputCapture {
  private chunks: string[] = [];
  private size = 0;
  private truncated = false;
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
    if (this.size >= MAX_CAPTURE) {
      this.truncated = true;
      return;
    }
    this.chunks.push(text);
    this.size += text.length;
  }

  stop(): void {
    process.off('uncaughtExceptionMonitor', this.onUncaught);
    process.off('exit', this.onExit);
    this.restore?.();
    this.restore = undefined;
  }

  text(): string {
    return this.chunks.join('') + (this.truncated ? '\n[output truncated at 1 MiB]\n' : '');
  }
}
