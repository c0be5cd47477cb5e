/**
 * When a watch ends and when it gets bookmarks, as kube-apiserver decides:
 *
 * - A watch lasts its `timeoutSeconds`. Without one (or with 0) the server picks a random
 *   lifetime between `--min-request-timeout` (1800 s by default) and twice that, so that watches
 *   opened together do not all end together. At the end the server closes the stream cleanly:
 *   no ERROR event, the client resumes from the last resourceVersion it saw.
 * - With `allowWatchBookmarks`, the watch cache sends a BOOKMARK (the current resourceVersion)
 *   about once a minute after the previous one, and one more 2 s before the watch's end, so
 *   that a client resuming after the end starts from a recent version. No bookmark is sent
 *   after that last one.
 */

/** kube-apiserver's `--min-request-timeout` default. */
export const DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS = 1800;

/** The watch cache's bookmark period. */
export const DEFAULT_BOOKMARK_INTERVAL_MS = 60_000;

/** How long before its end a watch gets its last bookmark. */
const PRE_TIMEOUT_BOOKMARK_MS = 2000;

/** A watch's lifetime in ms: its timeoutSeconds, else a random one in [min, 2 × min) request timeouts. */
export function watchLifetimeMs(opts: { timeoutSeconds: number; minRequestTimeoutSeconds: number; random?: () => number }): number {
  if (opts.timeoutSeconds > 0) return opts.timeoutSeconds * 1000;
  const random = opts.random ?? Math.random;
  return opts.minRequestTimeoutSeconds * (1 + random()) * 1000;
}

/**
 * When the bookmark after the one due at `after` (or after the watch's start) is due, in epoch
 * ms: one interval later, or 2 s before the end if that comes first; undefined when that is not
 * later than `after` (the last bookmark has been sent).
 */
export function nextBookmarkAt(opts: { after: number; endsAt: number; intervalMs: number }): number | undefined {
  const next = Math.min(opts.after + opts.intervalMs, opts.endsAt - PRE_TIMEOUT_BOOKMARK_MS);
  return next > opts.after ? next : undefined;
}
