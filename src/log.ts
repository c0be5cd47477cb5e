/**
 * The leader's and worker's log: one line per message on stderr, with a level filter.
 * Levels follow Toil's: critical, error, warning, info, debug.
 */
export type LogLevel = 'critical' | 'error' | 'warning' | 'info' | 'debug';

const RANK: Record<LogLevel, number> = { critical: 50, error: 40, warning: 30, info: 20, debug: 10 };

export interface Logger {
  level: LogLevel;
  critical(msg: string): void;
  error(msg: string): void;
  warning(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  enabled(level: LogLevel): boolean;
}

export type LogSink = (line: string) => void;

/** A hook that lets the progress display clear its line before a log line is written. */
let beforeWrite: (() => void) | undefined;
export function setBeforeLogWrite(hook: (() => void) | undefined): void {
  beforeWrite = hook;
}

export function createLogger(level: LogLevel = 'info', sink: LogSink = (l) => process.stderr.write(l + '\n'), prefix = ''): Logger {
  const emit = (lvl: LogLevel, msg: string) => {
    if (RANK[lvl] < RANK[logger.level]) return;
    beforeWrite?.();
    const ts = new Date().toISOString().slice(11, 23);
    sink(`[${ts}] ${lvl.toUpperCase().padEnd(7)} ${prefix}${msg}`);
  };
  const logger: Logger = {
    level,
    critical: (m) => emit('critical', m),
    error: (m) => emit('error', m),
    warning: (m) => emit('warning', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    enabled: (lvl) => RANK[lvl] >= RANK[logger.level],
  };
  return logger;
}

export const LOG_LEVELS: readonly LogLevel[] = ['critical', 'error', 'warning', 'info', 'debug'];
