/**
 * Capturing a job's output inside the worker process: writes to process.stdout and
 * process.stderr (console.* included) and `ctx.log` lines are collected while the job runs.
 * With `echo`, they are also passed through (a worker pod's own log shows them).
 */
const MAX_CAPTURE = 1024 * 1024;

export class OutputCapture {
  private chunks: string[] = [];
  private size = 0;
  private truncated = false;
  private restore: (() => void) | undefined;

  constructor(private readonly echo: boolean) {}

  start(): void {
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
    this.restore?.();
    this.restore = undefined;
  }

  text(): string {
    return this.chunks.join('') + (this.truncated ? '\n[output truncated at 1 MiB]\n' : '');
  }
}
