/** Request-level fault injection: make matching API requests fail with a real server's error bodies. */
import { ApiError } from './errors.js';

export interface RequestMatch {
  /** API verb: get, list, watch, create, update, patch, delete, deletecollection (any when omitted) */
  verb?: string;
  /** resource, optionally with subresource: "jobs", "pods", "pods/log" (any when omitted) */
  resource?: string;
  namespace?: string;
  name?: string;
}
export interface RequestFault extends RequestMatch {
  /** HTTP status to answer with: 500, 503, 429, 409, 504, 403 ... */
  status: number;
  /** for 429/503: the Retry-After header and details.retryAfterSeconds (default 1) */
  retryAfterSeconds?: number;
  /** fail only this many matching requests (default: until removed) */
  times?: number;
  message?: string;
}
interface Installed extends RequestFault {
  remaining: number;
  hits: number;
}

export class Faults {
  private installed = new Set<Installed>();
  private expiredBelow = 0;

  /** Installs a fault; returns a handle to remove it and to read how often it fired. */
  failRequests(f: RequestFault): { remove: () => void; hits: () => number } {
    const i: Installed = { ...f, remaining: f.times ?? Infinity, hits: 0 };
    this.installed.add(i);
    return { remove: () => this.installed.delete(i), hits: () => i.hits };
  }
  clearRequestFaults(): void {
    this.installed.clear();
    this.delays.clear();
    this.watchLags.clear();
  }

  private delays = new Set<RequestMatch & { ms: number }>();
  /** Adds latency to matching requests (before they are served). */
  delayRequests(d: RequestMatch & { ms: number }): { remove: () => void } {
    const i = { ...d };
    this.delays.add(i);
    return { remove: () => this.delays.delete(i) };
  }
  delayFor(req: { verb: string; resource: string; namespace: string; name: string }): number {
    let ms = 0;
    for (const d of this.delays) {
      if (d.verb && d.verb !== req.verb) continue;
      if (d.resource && d.resource !== req.resource) continue;
      if (d.namespace && d.namespace !== req.namespace) continue;
      if (d.name && d.name !== req.name) continue;
      ms = Math.max(ms, d.ms);
    }
    return ms;
  }
  private watchLags = new Set<{ resource?: string; ms: number }>();
  /** Holds back the events of matching watch streams by `ms` (in order), as a lagging stream would. */
  delayWatchEvents(d: { resource?: string; ms: number }): { remove: () => void } {
    const i = { ...d };
    this.watchLags.add(i);
    return { remove: () => this.watchLags.delete(i) };
  }
  watchLagFor(resource: string): number {
    let ms = 0;
    for (const d of this.watchLags) if (!d.resource || d.resource === resource) ms = Math.max(ms, d.ms);
    return ms;
  }
  /** Watches started from a resource version below `rv` get 410 Expired. */
  expireBelow(rv: number): void {
    this.expiredBelow = Math.max(this.expiredBelow, rv);
  }
  isExpired(rv: number): boolean {
    return rv < this.expiredBelow;
  }

  check(req: { verb: string; resource: string; namespace: string; name: string; path: string }): void {
    for (const f of this.installed) {
      if (f.verb && f.verb !== req.verb) continue;
      if (f.resource && f.resource !== req.resource) continue;
      if (f.namespace && f.namespace !== req.namespace) continue;
      if (f.name && f.name !== req.name) continue;
      if (f.remaining <= 0) continue;
      f.remaining--;
      f.hits++;
      if (f.remaining <= 0) this.installed.delete(f);
      throw faultError(f, req);
    }
  }
}

function faultError(f: RequestFault, req: { resource: string; name: string }): ApiError {
  const retry = f.retryAfterSeconds ?? 1;
  const [res, sub] = req.resource.split('/');
  switch (f.status) {
    case 429:
      return new ApiError(429, 'TooManyRequests', f.message ?? 'Too many requests, please try again later.', {
        retryAfterSeconds: retry,
      }).withHeaders({ 'Retry-After': String(retry) });
    case 409:
      return new ApiError(
        409,
        'Conflict',
        f.message ??
          `Operation cannot be fulfilled on ${req.resource} "${req.name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name: req.name, kind: res },
      );
    case 503:
      return new ApiError(503, 'ServiceUnavailable', f.message ?? 'the server is currently unable to handle the request', {
        retryAfterSeconds: retry,
      }).withHeaders({ 'Retry-After': String(retry) });
    case 504:
      return new ApiError(
        504,
        'Timeout',
        f.message ?? 'Timeout: request did not complete within requested timeout - context deadline exceeded',
        {},
      );
    case 403:
      return new ApiError(403, 'Forbidden', f.message ?? `${req.resource} is forbidden: injected fault`, { kind: res });
    case 404:
      return new ApiError(404, 'NotFound', f.message ?? `${res} "${req.name}" not found`, { name: req.name, kind: res });
    default: {
      const msg = f.message ?? 'injected fault';
      void sub;
      return new ApiError(f.status, f.status === 500 ? 'InternalError' : 'Unknown', `Internal error occurred: ${msg}`, {
        causes: [{ message: msg }],
      });
    }
  }
}

/**
 * A watch stream's writer whose lines leave `lag()` ms after they are written, in the order they
 * were written (a later line never overtakes an earlier one, even when the lag shrinks). Lines
 * still held back when the stream closes are dropped: a client resuming from the last version it
 * saw gets them again from the history, as after any ended watch.
 */
export function laggedStream(
  out: { write(s: string): unknown; readonly writableEnded: boolean },
  lag: () => number,
): { write(s: string): void } {
  const held: Array<{ due: number; line: string }> = [];
  let timer: NodeJS.Timeout | undefined;
  const release = (): void => {
    timer = undefined;
    while (held.length > 0 && held[0]!.due <= Date.now()) {
      const line = held.shift()!.line;
      if (!out.writableEnded) out.write(line);
    }
    if (held.length > 0) timer = setTimeout(release, held[0]!.due - Date.now()).unref();
  };
  return {
    write: (line) => {
      const ms = lag();
      if (ms <= 0 && held.length === 0) {
        out.write(line);
        return;
      }
      held.push({ due: Math.max(Date.now() + ms, held.at(-1)?.due ?? 0), line });
      timer ??= setTimeout(release, held[0]!.due - Date.now()).unref();
    },
  };
}
