/**
 * Watch timing as a real API server's: bookmarks about once a minute by default (and 2 s before a
 * watch's end), a watch ended by the server at its timeoutSeconds, and one without timeoutSeconds
 * given a random end between 30 and 60 minutes (--min-request-timeout 1800 s). A shorter bookmark
 * period is an explicit option.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, until } from '../src/cluster/testutil.js';

const ns = 'default';
let real: TestCluster;
let fast: TestCluster;

beforeAll(async () => {
  [real, fast] = await Promise.all([
    startTestCluster({ nodes: [{ name: 'node-1' }], mountNamespaces: false }),
    startTestCluster({ nodes: [{ name: 'node-1' }], mountNamespaces: false, bookmarkIntervalMs: 1000 }),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([real?.stop(), fast?.stop()]);
});

interface Watched {
  /** ms after the start at which each bookmark arrived */
  bookmarks: number[];
  /** ms after the start at which the stream ended, and with what */
  ended?: { at: number; err: unknown };
  abort(): void;
}

async function watchConfigMaps(cluster: TestCluster, query: Record<string, string | number | boolean>): Promise<Watched> {
  const kc = clients(cluster.kubeconfigPath).kc;
  const start = Date.now();
  const w: Watched = { bookmarks: [], abort: () => undefined };
  const watch = new k8s.Watch(kc);
  // the client's own inactivity limit must not be what ends these watches
  (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = 3_600_000;
  const ctl = await watch.watch(
    `/api/v1/namespaces/${ns}/configmaps`,
    query,
    (type) => {
      if (type === 'BOOKMARK') w.bookmarks.push(Date.now() - start);
    },
    (err) => {
      w.ended ??= { at: Date.now() - start, err };
    },
  );
  w.abort = () => ctl.abort();
  return w;
}

describe('watch timing', () => {
  test('a watch without timeoutSeconds is given a random end between 30 and 60 minutes', async () => {
    const watches = await Promise.all(Array.from({ length: 4 }, () => watchConfigMaps(real, {})));
    const timed = await watchConfigMaps(real, { timeoutSeconds: 300 });
    await until('the watches to open', () => real.watchCount('configmaps') === 5);
    const open = real.openWatches('configmaps');
    const untimed = open.filter((o) => o.timeoutSeconds === null);
    expect(untimed).toHaveLength(4);
    for (const o of untimed) {
      expect(o.lifetimeMs).toBeGreaterThanOrEqual(1800_000);
      expect(o.lifetimeMs).toBeLessThan(3600_000);
      expect(o.endsAt).toBeGreaterThan(Date.now() + 1790_000);
    }
    expect(new Set(untimed.map((o) => o.lifetimeMs)).size).toBeGreaterThan(1);
    expect(open.filter((o) => o.timeoutSeconds === 300).map((o) => o.lifetimeMs)).toEqual([300_000]);
    for (const w of [...watches, timed]) w.abort();
    await until('the watches to close', () => real.watchCount('configmaps') === 0);
  });

  test('a watch with timeoutSeconds is ended cleanly by the server at that time, with a bookmark 2 s before', async () => {
    const w = await watchConfigMaps(real, { timeoutSeconds: 5, allowWatchBookmarks: true });
    await until('the server to end the watch', () => w.ended, 30_000);
    expect(w.ended!.err).toBeNull();
    expect(w.ended!.at).toBeGreaterThanOrEqual(4900);
    expect(w.ended!.at).toBeLessThan(20_000);
    // the pre-timeout bookmark (due at 3 s), not a periodic one (the period is a minute)
    expect(w.bookmarks).toHaveLength(1);
    expect(w.bookmarks[0]).toBeGreaterThanOrEqual(2900);
    expect(real.watchCount('configmaps')).toBe(0);
  }, 40_000);

  test('by default a watch gets its first bookmark a minute after its start, not sooner', async () => {
    const start = Date.now();
    const w = await watchConfigMaps(real, { allowWatchBookmarks: true });
    await until('the watch to open', () => real.watchCount('configmaps') === 1);
    // the server's schedule (delivery at the scheduled time is shown with a short period below)
    const [open] = real.openWatches('configmaps');
    expect(open!.nextBookmarkAt! - start).toBeGreaterThanOrEqual(59_900);
    expect(open!.nextBookmarkAt! - Date.now()).toBeLessThanOrEqual(60_000);
    expect(w.bookmarks).toEqual([]);
    w.abort();
    await until('the watch to close', () => real.watchCount('configmaps') === 0);
  });

  test('with bookmarkIntervalMs set, bookmarks come at that interval', async () => {
    const w = await watchConfigMaps(fast, { allowWatchBookmarks: true });
    await new Promise((r) => setTimeout(r, 5500));
    w.abort();
    // due at 1, 2, 3, 4 and 5 s; a loaded machine may deliver one late, never early
    expect(w.bookmarks.length).toBeGreaterThanOrEqual(3);
    expect(w.bookmarks.length).toBeLessThanOrEqual(5);
    expect(w.bookmarks[0]).toBeGreaterThanOrEqual(990);
  }, 30_000);

  test('no bookmarks without allowWatchBookmarks', async () => {
    const w = await watchConfigMaps(fast, {});
    await new Promise((r) => setTimeout(r, 2500));
    w.abort();
    expect(w.bookmarks).toEqual([]);
  });
});
