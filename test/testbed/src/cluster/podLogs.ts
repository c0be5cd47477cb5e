/** pods/log as the kubelet serves it through the API server: container choice, previous, follow, tail, since, limits. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { open, stat } from 'node:fs/promises';
import { badRequest } from './errors.js';
import { queryBool } from './query.js';
import type { Obj, Store } from './store.js';

/** A log request: the HTTP exchange, its query, where container logs live and the store to follow the pod in. */
export interface LogRequest {
  req: IncomingMessage;
  res: ServerResponse;
  q: URLSearchParams;
  logDir: string;
  store: Store;
}

export async function servePodLog(at: LogRequest, pod: Obj): Promise<void> {
  const { req, res, q } = at;
  const container = logContainer(pod, q);
  if (!pod.spec?.nodeName) {
    // not scheduled yet: there is no kubelet to ask, and the API server answers with an empty log
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Cache-Control': 'no-cache, private' });
    res.end();
    return;
  }
  const previous = queryBool(q, 'previous');
  const follow = queryBool(q, 'follow');
  const restart = logInstance(pod, container, previous);
  const idx = previous ? restart - 1 : restart;
  const file = `${at.logDir}/${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}/${container}/${idx}.log`;
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Cache-Control': 'no-cache, private',
    ...(follow ? { 'Transfer-Encoding': 'chunked' } : {}),
  });
  const out = new LogWriter(res, q);
  const reader = new LogReader(file);
  let lines = (await reader.readNew()).map((l) => out.format(l)).filter((x): x is string => x !== undefined);
  const tail = q.has('tailLines') ? Number(q.get('tailLines')) : undefined;
  if (tail !== undefined && tail >= 0) lines = lines.slice(Math.max(0, lines.length - tail));
  for (const l of lines) if (!out.emit(l)) break;
  if (follow && !previous) await followLog({ req, pod, container, restart, store: at.store }, reader, out);
  res.end();
}

/** Streams new lines while that container instance runs (or until the client goes). */
async function followLog(
  f: { req: IncomingMessage; pod: Obj; container: string; restart: number; store: Store },
  reader: LogReader,
  out: LogWriter,
): Promise<void> {
  const { pod, container, restart } = f;
  let closed = false;
  f.req.on('close', () => {
    closed = true;
  });
  while (!closed) {
    await new Promise((r) => setTimeout(r, 100));
    for (const l of await reader.readNew()) {
      const line = out.format(l);
      if (line !== undefined && !out.emit(line)) {
        closed = true;
        break;
      }
    }
    const p = f.store.peek('pods', pod.metadata.namespace, pod.metadata.name);
    const st = p && p.metadata.uid === pod.metadata.uid ? containerStatusOf(p, container) : undefined;
    if (!(st && st.state?.running && (st.restartCount ?? 0) === restart)) {
      for (const l of await reader.readNew()) {
        const line = out.format(l);
        if (line !== undefined) out.emit(line);
      }
      break;
    }
  }
}

const containerStatusOf = (p: Obj, container: string): Obj | undefined =>
  [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])].find((s: Obj) => s.name === container);

/** The container a log request names (or the pod's only one); 400 as a real server words it. */
function logContainer(pod: Obj, q: URLSearchParams): string {
  const containers = ((pod.spec?.containers ?? []) as Obj[]).map((c) => c.name as string);
  const inits = ((pod.spec?.initContainers ?? []) as Obj[]).map((c) => c.name as string);
  const podName = pod.metadata.name as string;
  let container = q.get('container') ?? '';
  if (!container) {
    if (containers.length !== 1)
      throw badRequest(
        `a container name must be specified for pod ${podName}, choose one of: [${containers.join(' ')}]${inits.length ? ` or one of the init containers: [${inits.join(' ')}]` : ''}`,
      );
    container = containers[0]!;
  }
  if (!containers.includes(container) && !inits.includes(container))
    throw badRequest(`container ${container} is not valid for pod ${podName}`);
  return container;
}

/** The container's restart count, once it has a log to show (previous: a terminated instance before it). */
function logInstance(pod: Obj, container: string, previous: boolean): number {
  const cs = containerStatusOf(pod, container);
  const restart = (cs?.restartCount ?? 0) as number;
  if (previous) {
    if (!cs || restart === 0)
      throw badRequest(`previous terminated container "${container}" in pod "${String(pod.metadata.name)}" not found`);
  } else if (!cs || (!cs.state?.running && !cs.state?.terminated)) {
    const why = cs?.state?.waiting?.reason ?? 'ContainerCreating';
    throw badRequest(`container "${container}" in pod "${String(pod.metadata.name)}" is waiting to start: ${why}`);
  }
  return restart;
}

/** Reads the lines a CRI log file gained since the last call (a partial last line waits for its end). */
class LogReader {
  private pos = 0;
  private partial = '';
  constructor(private readonly file: string) {}

  async readNew(): Promise<string[]> {
    let size = 0;
    try {
      size = (await stat(this.file)).size;
    } catch {
      return [];
    }
    if (size <= this.pos) return [];
    const fh = await open(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.pos);
      await fh.read(buf, 0, buf.length, this.pos);
      this.pos = size;
      const lines = (this.partial + buf.toString('utf8')).split('\n');
      this.partial = lines.pop() ?? '';
      return lines;
    } finally {
      await fh.close();
    }
  }
}

/** Formats CRI log lines as the request asks (timestamps, since) and writes them up to limitBytes. */
class LogWriter {
  private sent = 0;
  private readonly timestamps: boolean;
  private readonly since: number | undefined;
  private readonly limitBytes: number | undefined;
  constructor(
    private readonly res: ServerResponse,
    q: URLSearchParams,
  ) {
    this.timestamps = queryBool(q, 'timestamps');
    this.since = q.has('sinceSeconds')
      ? Date.now() - Number(q.get('sinceSeconds')) * 1000
      : q.has('sinceTime')
        ? Date.parse(q.get('sinceTime')!)
        : undefined;
    this.limitBytes = q.has('limitBytes') ? Number(q.get('limitBytes')) : undefined;
  }

  /** `<time> <stream> <F|P> <text>` → the text (with its time), or undefined when filtered out. */
  format(line: string): string | undefined {
    const m = /^(\S+) (stdout|stderr) ([FP]) (.*)$/s.exec(line);
    if (!m) return undefined;
    if (this.since !== undefined && Date.parse(m[1]!) < this.since) return undefined;
    return `${this.timestamps ? `${m[1]!} ` : ''}${m[4]!}${m[3] === 'F' ? '\n' : ''}`;
  }

  /** Writes (part of) the text; false once limitBytes is reached. */
  emit(s: string): boolean {
    if (this.limitBytes !== undefined) {
      if (this.sent >= this.limitBytes) return false;
      s = Buffer.from(s)
        .subarray(0, this.limitBytes - this.sent)
        .toString('utf8');
    }
    this.sent += Buffer.byteLength(s);
    this.res.write(s);
    return true;
  }
}
