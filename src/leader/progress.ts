/**
 * Progress for people: on a terminal, one status line kept up to date on stderr; otherwise a
 * status line in the log at intervals.
 */
import { setBeforeLogWrite, type Logger } from '../log.js';

export interface ProgressCounts {
  done: number;
  running: number;
  queued: number;
  /** Pending jobs not ready yet: on other jobs, or a retry's backoff (shown when there are any). */
  waiting?: number;
  failed: number;
  total: number;
}

function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** The longest account of what queued jobs wait for that a status line carries. */
const WAITING_FOR_MAX = 240;

/**
 * The status line; with `waitingFor`, what the queued jobs wait for (said whenever jobs are
 * queued, so that a line never shows queued jobs for minutes without saying why).
 */
export function statusLine(c: ProgressCounts, elapsedMs: number, waitingFor?: string): string {
  const waiting = c.waiting ? `, ${c.waiting} waiting` : '';
  const line = `jobs: ${c.done} done, ${c.running} running, ${c.queued} queued${waiting}, ${c.failed} failed (of ${c.total}) · ${formatElapsed(elapsedMs)}`;
  if (!waitingFor || c.queued === 0) return line;
  const why = waitingFor.length <= WAITING_FOR_MAX ? waitingFor : `${waitingFor.slice(0, WAITING_FOR_MAX - 1)}…`;
  return `${line} · queued: ${why}`;
}

export class Progress {
  private readonly started = Date.now();
  private lastRender = 0;
  private shown = false;
  private lastLog = Date.now();

  constructor(
    private readonly logger: Logger,
    private readonly tty: boolean,
    private readonly intervalMs: number,
  ) {
    if (tty) setBeforeLogWrite(() => this.clear());
  }

  /** Shows the counts, and what queued jobs wait for, if it is time to; the callbacks are only called then. */
  update(counts: () => ProgressCounts, waitingFor: () => string | undefined = () => undefined): void {
    const now = Date.now();
    if (this.tty) {
      if (now - this.lastRender < 200) return;
      this.lastRender = now;
      const line = statusLine(counts(), now - this.started, waitingFor());
      const width = process.stderr.columns;
      process.stderr.write(`\r\x1b[K${width && line.length >= width ? `${line.slice(0, width - 2)}…` : line}`);
      this.shown = true;
    } else if (now - this.lastLog >= this.intervalMs) {
      this.lastLog = now;
      this.logger.info(statusLine(counts(), now - this.started, waitingFor()));
    }
  }

  clear(): void {
    if (this.shown) {
      process.stderr.write('\r\x1b[K');
      this.shown = false;
    }
  }

  finish(c: ProgressCounts): void {
    if (this.tty) {
      this.clear();
      setBeforeLogWrite(undefined);
    }
    this.logger.info(statusLine(c, Date.now() - this.started));
  }
}
