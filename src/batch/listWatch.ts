/**
 * List + watch of one collection on a label selector, reusable for any kind of object: the
 * handler sees every object once from a list, then each change from a watch. The watch resumes
 * from the last resourceVersion it saw (bookmarks included) after the server or the network
 * ends it, re-lists after 410 Gone (or after repeated failures), and backs off between failed
 * attempts. Every request waits for the client-side rate limiter.
 *
 * Why not client-node's `makeInformer`: its ListWatch (1) does not ask for bookmarks, so on a
 * quiet collection it learns no newer resourceVersion and, after a while, has to re-list;
 * (2) sends its watch requests past our rate limiter; (3) stops for good on any error other
 * than 410 or a timeout, leaving the retry loop to the caller anyway; and (4) keeps a cache of
 * every object, which the batch system does not need. Its `Watch` (one streaming request,
 * with the kubeconfig's authentication) is what we use.
 *
 * `Watch` aborts a request after `requestTimeoutMs` (30 s by default) without a byte from the
 * server. Real API servers send a bookmark about once a minute, so that default cuts every
 * quiet watch (a new watch request each time) and, if taken for a failure, leads to backoff
 * and re-lists. Here the inactivity limit is well past the bookmark period (default 150 s,
 * long enough to miss two bookmarks), and a watch ended by it resumes at once from its
 * resourceVersion like one the server ended: no event can have been missed.
 *
 * Each watch asks the server to end it after a random 5–10 minutes (`timeoutSeconds`, as
 * client-go's reflector does; without one a real server picks 30–60 minutes). The server then
 * closes the stream cleanly, after a last bookmark 2 s before: that is a normal end, not a
 * failure — the next watch starts at once from the last resourceVersion, with no re-list and no
 * backoff. Only errors count as failures.
 */
import { backoffDelayMs, type BackoffPolicy } from '../backoff.js';
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { sleep } from '../concurrency.js';
import { errorMessage } from '../errors.js';
import { apiErrorInfo, KubernetesApiError } from './kubeRetry.js';
import type { RateLimiter } from './rateLimiter.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchSource<T> {
  /** What is watched, for messages ('Jobs', 'pods'). */
  what: string;
  /** The collection's URL path, e.g. `/api/v1/namespaces/default/pods`. */
  path: string;
  labelSelector: string;
  /** Lists the collection (rate limiting and retries are the caller's). */
  list(): Promise<{ items: T[]; resourceVersion: string | undefined }>;
  /** The object of a watch event as the handler may use it, or undefined if it is not one. */
  parse(obj: unknown): T | undefined;
}

export interface ListWatchOptions<T> {
  kc: KubeConfig;
  limiter: RateLimiter;
  onEvent(type: WatchEventType, obj: T): void;
  /** After each (re-)list, with every listed object (their ADDED events come first) and when the list request was sent (ms). */
  onList?(items: T[], sentAt: number): void;
  /** Where the loop says why it starts again (debug level). */
  log?(message: string): void;
  /** Abort a watch after this long without a byte from the server (default 150 s). */
  inactivityTimeoutMs?: number;
  /** The `timeoutSeconds` each watch asks for (default: a random 300–600, as client-go). */
  watchTimeoutSeconds?: () => number;
}

export const DEFAULT_WATCH_INACTIVITY_MS = 150_000;

/** Failed attempts in a row after which the resourceVersion is dropped and the loop re-lists. */
const RELIST_AFTER_FAILURES = 3;

type WatchEnd = 'ended' | 'gone';

interface RawEvent {
  type: string;
  object: unknown;
}

/** The resourceVersion an event carries, if any. */
function versionOf(obj: unknown): string | undefined {
  const meta = (obj as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
  return typeof meta?.resourceVersion === 'string' && meta.resourceVersion !== '' ? meta.resourceVersion : undefined;
}

function isGoneStatus(obj: unknown): boolean {
  return (obj as { code?: unknown } | null)?.code === 410;
}

/**
 * Sets `Watch`'s inactivity limit. client-node 2.0 keeps it in a field that is private to the
 * type checker only; should a later version drop the field, the default stays and a timed-out
 * watch still just resumes.
 */
function withInactivityTimeout(watch: Watch, ms: number): Watch {
  const fields = watch as unknown as { requestTimeoutMs?: unknown };
  if (typeof fields.requestTimeoutMs === 'number') fields.requestTimeoutMs = ms;
  return watch;
}

/** How long to wait before a new watch after `failures` failed ones: the shared policy, 0.4 s doubling to 10 s. */
export function watchRetryDelay(failures: number, random: () => number = Math.random): number {
  return backoffDelayMs(failures, WATCH_BACKOFF, { random });
}

const WATCH_BACKOFF: BackoffPolicy = { baseMs: 400, maxMs: 10_000 };

/** client-go's minimum watch timeout: each watch asks for 1–2 times this. */
const MIN_WATCH_TIMEOUT_SECONDS = 300;

/** A watch's timeoutSeconds: a random whole number in [300, 600). */
export function watchTimeoutSeconds(random: () => number = Math.random): number {
  return Math.floor(MIN_WATCH_TIMEOUT_SECONDS * (1 + random()));
}

export class ListWatch<T> {
  private resourceVersion: string | undefined;
  private closed = false;
  private current: AbortController | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly source: ListWatchSource<T>,
    private readonly opts: ListWatchOptions<T>,
  ) {}

  /** Starts the loop in the background; it runs until `stop()`. */
  start(): void {
    this.running ??= this.loop();
  }

  /** Ends the loop and aborts the watch in flight. */
  stop(): void {
    this.closed = true;
    this.current?.abort();
  }

  /** The newest resourceVersion seen (for tests and tools). */
  get version(): string | undefined {
    return this.resourceVersion;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        if (this.resourceVersion === undefined) await this.relist();
        if ((await this.watchOnce()) === 'gone') this.resourceVersion = undefined;
        failures = 0;
      } catch (e) {
        if (this.closed) return;
        failures++;
        const delay = watchRetryDelay(failures);
        this.opts.log?.(`watch ${this.source.what}: ${errorMessage(e)}; again in ${Math.round(delay)} ms`);
        if (failures > RELIST_AFTER_FAILURES) this.resourceVersion = undefined;
        await sleep(delay);
      }
    }
  }

  private async relist(): Promise<void> {
    this.resourceVersion = await this.listOnce();
  }

  /**
   * Lists the collection again and hands every object to the handler as a re-list does, while
   * the watch goes on from where it is (a controller's resync): what a lost or lagging event
   * hid is seen. Throws what the list throws.
   */
  async resync(): Promise<void> {
    await this.listOnce();
  }

  /** One list, handed to the handler; returns its resourceVersion. */
  private async listOnce(): Promise<string | undefined> {
    const sentAt = Date.now();
    const list = await this.source.list();
    if (!Array.isArray(list.items))
      throw new KubernetesApiError(`list ${this.source.what}`, { status: undefined, message: 'the answer has no items' });
    for (const item of list.items) this.opts.onEvent('ADDED', item);
    this.opts.onList?.(list.items, sentAt);
    return list.resourceVersion;
  }

  /** One watch request; resolves when the stream ends, 'gone' when its version expired (410). */
  private async watchOnce(): Promise<WatchEnd> {
    await this.opts.limiter.take();
    if (this.closed) return 'ended';
    const watch = withInactivityTimeout(new Watch(this.opts.kc), this.opts.inactivityTimeoutMs ?? DEFAULT_WATCH_INACTIVITY_MS);
    const query = {
      labelSelector: this.source.labelSelector,
      allowWatchBookmarks: true,
      timeoutSeconds: (this.opts.watchTimeoutSeconds ?? watchTimeoutSeconds)(),
      ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}),
    };
    return new Promise<WatchEnd>((resolve, reject) => {
      let gone = false;
      const onEvent = (type: string, object: unknown) => {
        if (this.handle({ type, object }) === 'gone') gone = true;
      };
      const onDone = (err: unknown) => {
        if (!err || gone) return resolve(gone ? 'gone' : 'ended');
        if ((err as { name?: unknown }).name === 'TimeoutError') return resolve('ended');
        if (apiErrorInfo(err).status === 410) return resolve('gone');
        reject(new KubernetesApiError(`watch ${this.source.what}`, apiErrorInfo(err)));
      };
      watch.watch(this.source.path, query, onEvent, onDone).then((ac) => {
        if (this.closed) ac.abort();
        else this.current = ac;
      }, reject);
    });
  }

  /** Handles one watch event; says 'gone' for a 410 Status. */
  private handle(event: RawEvent): 'gone' | undefined {
    if (event.type === 'ERROR') return isGoneStatus(event.object) ? 'gone' : undefined;
    const version = versionOf(event.object);
    if (version) this.resourceVersion = version;
    if (event.type !== 'ADDED' && event.type !== 'MODIFIED' && event.type !== 'DELETED') return undefined;
    const obj = this.source.parse(event.object);
    if (obj === undefined) {
      this.opts.log?.(`watch ${this.source.what}: ignoring a ${event.type} event without a named object`);
      return undefined;
    }
    this.opts.onEvent(event.type, obj);
    return undefined;
  }
}

/** A parse for `ListWatchSource`: accepts an object with a string `metadata.name`. */
export function namedObject<T extends { metadata?: { name?: string } }>(obj: unknown): T | undefined {
  const meta = (obj as { metadata?: { name?: unknown } } | null)?.metadata;
  return typeof meta?.name === 'string' && meta.name !== '' ? (obj as T) : undefined;
}
