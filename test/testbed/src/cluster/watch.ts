/**
 * Watches as a real API server serves them: JSON lines, resourceVersion resume (410 when too
 * old), selectors (objects moving out of one arrive as DELETED), bookmarks and the server's end
 * of a watch at the times of watchTiming.ts, and the open watches the faults can end.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gvString, resKey, type ResourceInfo } from './resources.js';
import type { Registry } from './registry.js';
import { clone, type Obj, type StoreEvent } from './store.js';
import { toTable } from './tables.js';
import { laggedStream, type Faults } from './faults.js';
import { nextBookmarkAt, watchLifetimeMs } from './watchTiming.js';
import { queryBool } from './query.js';

/** An open watch as the server sees it (`TestCluster.openWatches`). */
export interface OpenWatch {
  resource: string;
  /** the client's timeoutSeconds, or null when it set none */
  timeoutSeconds: number | null;
  /** when the server ends the watch (epoch ms) */
  endsAt: number;
  /** how long the server gave it from its start (ms) */
  lifetimeMs: number;
  /** whether it gets bookmarks (allowWatchBookmarks) */
  bookmarks: boolean;
  /** when its next bookmark is due (epoch ms), while one is */
  nextBookmarkAt?: number;
}

/** One watch request: the exchange, the resource and namespace, the query and its compiled selectors. */
export interface WatchCall {
  req: IncomingMessage;
  res: ServerResponse;
  info: ResourceInfo;
  ns: string | undefined;
  q: URLSearchParams;
  match: (o: Obj) => boolean;
  /** the client asked for Tables (kubectl get -w) */
  tables: boolean;
}

export interface WatchDeps {
  registry: Registry;
  faults: Faults;
  bookmarkIntervalMs: number;
  minRequestTimeoutSeconds: number;
}

interface Entry {
  res: ServerResponse;
  stop: (err?: Obj) => void;
  resource: string;
  info: OpenWatch;
}

export class Watches {
  private watches = new Set<Entry>();
  constructor(private d: WatchDeps) {}

  /** Ends matching watches: without an error (the client simply sees the stream end) or with 410 Expired. */
  end(filter: (resource: string) => boolean, expire: boolean): number {
    let n = 0;
    for (const w of [...this.watches]) {
      if (!filter(w.resource)) continue;
      n++;
      w.stop(
        expire
          ? {
              kind: 'Status',
              apiVersion: 'v1',
              metadata: {},
              status: 'Failure',
              message: 'The resourceVersion for the provided watch is too old.',
              reason: 'Expired',
              code: 410,
            }
          : undefined,
      );
    }
    return n;
  }

  stopAll(): void {
    for (const w of [...this.watches]) w.stop();
  }

  count(resource?: string): number {
    return [...this.watches].filter((w) => !resource || w.resource === resource).length;
  }

  open(resource?: string): OpenWatch[] {
    return [...this.watches].filter((w) => !resource || w.resource === resource).map((w) => ({ ...w.info }));
  }

  /** Serves one watch request; `match` is its label and field selectors, `tables` whether it asked for Tables. */
  serve(c: WatchCall): void {
    const { req, res, info, ns, q, match } = c;
    const store = this.d.registry.store;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const out = laggedStream(res, () => this.d.faults.watchLagFor(info.plural));
    const write = watchWriter(out, resKey(info), c.tables ? (q.get('includeObject') ?? 'Metadata') : undefined);
    const deliver = watchDelivery(resKey(info), (o) => ns === undefined || o.metadata.namespace === ns, match, write);
    const cleanup: (() => void)[] = [];
    const open = this.watchInfo(c);
    const entry: Entry = {
      res,
      resource: open.resource,
      info: open,
      stop: (err?: Obj): void => {
        for (const undo of cleanup.splice(0)) undo();
        this.watches.delete(entry);
        if (err && !res.writableEnded) res.write(`${JSON.stringify({ type: 'ERROR', object: err })}\n`);
        if (!res.writableEnded) res.end();
      },
    };
    this.watches.add(entry);
    req.on('close', () => entry.stop());
    res.on('close', () => entry.stop());
    if (!this.replay(c, { write, deliver, stop: entry.stop })) return;
    cleanup.push(store.on(deliver));
    const timer = setTimeout(() => entry.stop(), open.endsAt - Date.now());
    cleanup.push(() => clearTimeout(timer));
    if (open.bookmarks) cleanup.push(this.scheduleBookmarks(c, { open, write }));
  }

  /** When the watch ends (its timeoutSeconds, else a random 1–2 × --min-request-timeout) and whether it gets bookmarks. */
  private watchInfo({ info, q }: WatchCall): OpenWatch {
    const asked = Number(q.get('timeoutSeconds') ?? '0');
    const timeoutSeconds = Number.isFinite(asked) && asked > 0 ? asked : 0;
    const lifetimeMs = watchLifetimeMs({ timeoutSeconds, minRequestTimeoutSeconds: this.d.minRequestTimeoutSeconds });
    return {
      resource: info.plural,
      timeoutSeconds: timeoutSeconds || null,
      endsAt: Date.now() + lifetimeMs,
      lifetimeMs,
      bookmarks: queryBool(q, 'allowWatchBookmarks'),
    };
  }

  /** Sends bookmarks at the watch cache's times (watchTiming.ts); returns their cancellation. */
  private scheduleBookmarks({ info }: WatchCall, w: { open: OpenWatch; write: WatchWrite }): () => void {
    const store = this.d.registry.store;
    let timer: NodeJS.Timeout | undefined;
    const arm = (after: number): void => {
      const at = nextBookmarkAt({ after, endsAt: w.open.endsAt, intervalMs: this.d.bookmarkIntervalMs });
      w.open.nextBookmarkAt = at;
      if (at === undefined) return;
      timer = setTimeout(() => {
        w.write('BOOKMARK', {
          kind: info.kind,
          apiVersion: gvString(info.group, info.version),
          metadata: { resourceVersion: String(store.rv) },
        });
        arm(at);
      }, at - Date.now());
    };
    arm(Date.now());
    return () => clearTimeout(timer);
  }

  /** A watch's first events: the current list (resourceVersion unset or 0, or sendInitialEvents) or the history after resourceVersion; false when it ended with an error. */
  private replay(
    { info, ns, q, match }: WatchCall,
    w: { write: WatchWrite; deliver: (e: StoreEvent) => void; stop: (err?: Obj) => void },
  ): boolean {
    const store = this.d.registry.store;
    const rvParam = q.get('resourceVersion') ?? '';
    const sendInitial = queryBool(q, 'sendInitialEvents');
    if (rvParam === '' || rvParam === '0' || sendInitial) {
      for (const o of this.d.registry.list(info, ns).filter(match)) w.write('ADDED', clone(o));
      if (sendInitial && queryBool(q, 'allowWatchBookmarks'))
        w.write('BOOKMARK', {
          kind: info.kind,
          apiVersion: gvString(info.group, info.version),
          metadata: { resourceVersion: String(store.rv), annotations: { 'k8s.io/initial-events-end': 'true' } },
        });
      return true;
    }
    const rvNum = Number(rvParam);
    if (!Number.isFinite(rvNum)) {
      w.stop({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `invalid resource version: ${rvParam}`,
        reason: 'BadRequest',
        code: 400,
      });
      return false;
    }
    const evs = store.since(resKey(info), rvNum);
    if (!evs || this.d.faults.isExpired(rvNum)) {
      w.stop({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${rvNum} (${store.compactedRv + 1})`,
        reason: 'Expired',
        code: 410,
      });
      return false;
    }
    for (const e of evs) w.deliver(e);
    return true;
  }
}

type WatchWrite = (type: string, obj: Obj) => void;

/** Writes watch events as JSON lines; objects as Tables when `tableObjects` (includeObject) is set. */
function watchWriter(res: { write(s: string): unknown }, key: string, tableObjects: string | undefined): WatchWrite {
  return (type, obj) => {
    const o =
      tableObjects !== undefined && type !== 'ERROR' && type !== 'BOOKMARK'
        ? toTable(key, [obj], { resourceVersion: obj.metadata.resourceVersion }, tableObjects)
        : obj;
    res.write(`${JSON.stringify({ type, object: o })}\n`);
  };
}

/** Store events as a selector-filtered watch sees them: objects moving out of the selector arrive as DELETED. */
function watchDelivery(key: string, inScope: (o: Obj) => boolean, match: (o: Obj) => boolean, write: WatchWrite): (e: StoreEvent) => void {
  return (e) => {
    if (e.res !== key || !inScope(e.obj)) return;
    const now = match(e.obj);
    const before = e.prev ? match(e.prev) : false;
    if (e.type === 'ADDED') {
      if (now) write('ADDED', e.obj);
    } else if (e.type === 'MODIFIED') {
      if (now && before) write('MODIFIED', e.obj);
      else if (now && !before) write('ADDED', e.obj);
      else if (!now && before) write('DELETED', e.obj);
    } else if (e.type === 'DELETED') {
      if (before || now) write('DELETED', e.obj);
    }
  };
}
