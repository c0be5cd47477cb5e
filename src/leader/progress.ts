/**
 * Progress for people: on a terminal, one status line kept up to date on stderr; otherwise a
 * status line in the log at intervals.
 */
import { setBeforeLogWrite, type Logger } from '../log.js';

export interface ProgressCounts {
  done: number;
  running: number;
  queued: number;
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

export function statusLine(c: ProgressCounts, elapsedMs: number): string {
  return `jobs: ${c.done} done, ${c.running} running, ${c.queued} queued, ${c.failed} failed (of ${c.total}) · ${formatElapsed(elapsedMs)}`;
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

  /** Shows the counts if it is time to; `counts` is only called then. */
  update(counts: () => ProgressCounts, force = false): void {
    const now = Date.now();
    if (this.tty) {
      if (!force && now - this.lastRender < 200) return;
      this.lastRender = now;
      process.stderr.write(`\r\x1b[K${statusLine(counts(), now - this.started)}`);
      this.shown = true;
    } else if (force || now - this.lastLog >= this.intervalMs) {
      this.lastLog = now;
      this.logger.info(statusLine(counts(), now - this.started));
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
