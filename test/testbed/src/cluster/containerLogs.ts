/** Container logs as containerd writes them (CRI format, long lines split) and the tail the kubelet reads back. */
import { readFileSync } from 'node:fs';

/**
 * containerd's `max_container_log_line_size` (16 KiB, its default, as on EKS and GKE): a longer
 * line is written as partial (`P`) entries of at most this many bytes and a final (`F`) one. The
 * kubelet's `tailLines` counts entries, so the last entry of a long line is its end.
 */
export const MAX_LOG_LINE_BYTES = 16 * 1024;

/** Where to cut `buf` (≤ max bytes), not inside a UTF-8 sequence (the log file is written as text). */
function cutAt(buf: Buffer, max: number): number {
  let i = Math.min(max, buf.length);
  while (i > 0 && i < buf.length && (buf[i]! & 0xc0) === 0x80) i--;
  return i > 0 ? i : Math.min(max, buf.length);
}

/** Writes a stream's output as CRI log entries: one per line, long lines split as containerd splits them. */
export function pumpLines(stream: NodeJS.ReadableStream, name: string, logLine: (line: string) => void): void {
  let buf = Buffer.alloc(0);
  const entry = (tag: 'P' | 'F', bytes: Buffer): void => logLine(`${new Date().toISOString()} ${name} ${tag} ${bytes.toString('utf8')}\n`);
  stream.on('data', (d: Buffer | string) => {
    buf = Buffer.concat([buf, typeof d === 'string' ? Buffer.from(d) : d]);
    for (;;) {
      const nl = buf.indexOf(10);
      if (nl >= 0 && nl <= MAX_LOG_LINE_BYTES) {
        entry('F', buf.subarray(0, nl));
        buf = buf.subarray(nl + 1);
      } else if (buf.length > MAX_LOG_LINE_BYTES) {
        const cut = cutAt(buf, MAX_LOG_LINE_BYTES);
        entry('P', buf.subarray(0, cut));
        buf = buf.subarray(cut);
      } else return;
    }
  });
  stream.on('end', () => {
    if (buf.length > 0) entry('F', buf);
    buf = Buffer.alloc(0);
  });
}

/** The tail of a container log (80 lines, 2048 bytes), which the kubelet uses as a FallbackToLogsOnError termination message. */
export function logTail(file: string): string | undefined {
  try {
    // the last 80 entries, a partial (P) entry joined to the next without a newline
    const text = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(-80)
      .map((l) => /^\S+ (?:stdout|stderr) ([FP]) (.*)$/s.exec(l))
      .map((m) => (m ? `${m[2]!}${m[1] === 'F' ? '\n' : ''}` : '\n'))
      .join('')
      .replace(/\n$/, '');
    return Buffer.from(text).subarray(-2048).toString('utf8');
  } catch {
    return undefined;
  }
}
