/**
 * Capturing a job's output inside the worker process: writes to process.stdout and
 * process.stderr (console.* included) and `ctx.log` lines are collected while the job runs.
 * With `echo`, they are also passed through, all to stderr (a worker pod's own log shows them).
 * Their start and their end are kept, within a bound (HEAD_MAX + TAIL_MAX). If the job ends the process
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
  /** Echoed writes whose callback has not come yet, in order (see `writeUnflushed`). */
  private readonly unconfirmed = new Set<{ data: Buffer }>();
  private readonly onExit = (code: number) => {
    const how = this.uncaught === undefined ? { exitCode: code } : { uncaught: this.uncaught };
    writeUnflushed([...this.unconfirmed].map((w) => w.data));
    const kept = this.echo ? '' : this.text();
    writeAllSync(2, `${kept}${kept === '' || kept.endsWith('\n') ? '' : '\n'}${processEndLine(this.label, how)}\n`);
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
    // Echoed output all goes to stderr, in the order the job wrote it: two pipes are read
    // apart, and a final error written to one would come before output still queued for the other.
    const wrap = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      this.add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
      const cb = rest.find((r) => typeof r === 'function') as ((e?: Error | null) => void) | undefined;
      const encoding = rest.find((r): r is BufferEncoding => typeof r === 'string');
      if (this.echo) return this.echoWrite(err as (...a: unknown[]) => boolean, { chunk, encoding, cb });
      if (cb) queueMicrotask(cb);
      return true;
    }) as typeof out;
    process.stdout.write = wrap;
    process.stderr.write = wrap;
    this.restore = () => {
      process.stdout.write = out;
      process.stderr.write = err;
    };
  }

  /** Passes a write through to stderr, remembering it until its callback says it is written. */
  private echoWrite(
    orig: (...a: unknown[]) => boolean,
    w: { chunk: string | Uint8Array; encoding: BufferEncoding | undefined; cb: ((e?: Error | null) => void) | undefined },
  ): boolean {
    const entry = { data: typeof w.chunk === 'string' ? Buffer.from(w.chunk, w.encoding ?? 'utf8') : Buffer.from(w.chunk) };
    this.unconfirmed.add(entry);
    return orig(w.chunk, w.encoding, (e?: Error | null) => {
      this.unconfirmed.delete(entry);
      w.cb?.(e);
    });
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

/**
 * Node drops the writes to a full pipe still queued when the process exits: the last ones,
 * which hold a chatty job's final error. stderr's `writableLength` is what it has not handed
 * to the pipe yet, always the end of what was echoed, and so the end of the echoed writes
 * whose callback has not come (callbacks come a tick late): that end is written here,
 * synchronously, before the process goes.
 */
function writeUnflushed(unconfirmed: Buffer[]): void {
  const n = process.stderr.writableLength;
  if (n <= 0 || unconfirmed.length === 0) return;
  const all = Buffer.concat(unconfirmed);
  writeAllSync(2, all.subarray(Math.max(0, all.length - n)));
}

/**
 * Writes all of `text` to `fd` before returning, waiting while a full pipe (non-blocking, as
 * Node makes it) answers EAGAIN, for at most `ms`; gives up if the reader is gone.
 */
function writeAllSync(fd: number, text: string | Buffer, ms = 10_000): void {
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  const until = Date.now() + ms;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let done = 0;
  while (done < buf.length) {
    try {
      done += writeSync(fd, buf, done, buf.length - done);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > until) return;
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}
