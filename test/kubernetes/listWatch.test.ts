/**
 * The generic list + watch (src/batch/listWatch.ts) on the test cluster with a real server's
 * watch timing (bookmarks once a minute, watches ended at their timeoutSeconds): one list, then
 * watches resumed from their resourceVersion after a dropped stream, an inactivity timeout or
 * the server's end of a watch, a re-list after 410 Gone, every change seen exactly once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { V1ConfigMap } from '@kubernetes/client-node';
import { ListWatch, namedObject, type ListWatchSource, type WatchEventType } from '../../src/batch/listWatch.js';
import { RateLimiter } from '../../src/batch/rateLimiter.js';
import { sleep } from '../../src/concurrency.js';
import { startTestCluster, type TestCluster } from '@toil-ts/testbed/cluster';
import { clients, until } from '@toil-ts/testbed/cluster/testutil';

const NS = 'default';
const SELECTOR = 'watched=yes';

let cluster: TestCluster;
let api: ReturnType<typeof clients>;
let running: ListWatch<V1ConfigMap> | undefined;
let made = 0;

beforeAll(async () => {
  cluster = await startTestCluster();
  api = clients(cluster.kubeconfigPath);
}, 60_000);
afterEach(() => running?.stop());
afterAll(async () => {
  await cluster?.stop();
});

function source(): ListWatchSource<V1ConfigMap> {
  return {
    what: 'configmaps',
    path: `/api/v1/namespaces/${NS}/configmaps`,
    labelSelector: SELECTOR,
    list: async () => {
      const list = await api.core.listNamespacedConfigMap({ namespace: NS, labelSelector: SELECTOR });
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion };
    },
    parse: (obj) => namedObject<V1ConfigMap>(obj),
  };
}

/** Starts a list + watch that records `type name` for every event (and its log lines in `logged`). */
function watchAll(opts: { inactivityTimeoutMs?: number; watchTimeoutSeconds?: () => number; logged?: string[] } = {}): string[] {
  const seen: string[] = [];
  const onEvent = (type: WatchEventType, cm: V1ConfigMap) => seen.push(`${type} ${cm.metadata?.name}`);
  running = new ListWatch(source(), {
    kc: api.kc,
    limiter: new RateLimiter(50, 50),
    onEvent,
    log: (m) => opts.logged?.push(m),
    ...(opts.inactivityTimeoutMs ? { inactivityTimeoutMs: opts.inactivityTimeoutMs } : {}),
    ...(opts.watchTimeoutSeconds ? { watchTimeoutSeconds: opts.watchTimeoutSeconds } : {}),
  });
  running.start();
  return seen;
}

async function createMap(watched = true): Promise<string> {
  const name = `cm-${++made}`;
  await api.core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name, labels: { watched: watched ? 'yes' : 'no' } }, data: { n: String(made) } },
  });
  return name;
}

function count(key: string): number {
  return cluster.requestCounts()[key] ?? 0;
}

describe('list + watch', () => {
  it('lists once, then sees each later change once, across dropped streams', async () => {
    const before = await createMap();
    await createMap(false);
    cluster.resetRequestCounts();
    const seen = watchAll();
    await until('the list', () => seen.includes(`ADDED ${before}`));
    await until('a watch', () => count('watch configmaps') >= 1);
    const a = await createMap();
    await until('a', () => seen.includes(`ADDED ${a}`));
    cluster.faults.dropWatches('configmaps');
    const b = await createMap();
    await api.core.deleteNamespacedConfigMap({ namespace: NS, name: a });
    await until('b and the deletion of a', () => seen.includes(`ADDED ${b}`) && seen.includes(`DELETED ${a}`));
    expect(seen.filter((s) => s.startsWith('ADDED'))).toEqual([`ADDED ${before}`, `ADDED ${a}`, `ADDED ${b}`]);
    expect(count('list configmaps')).toBe(1);
    expect(count('watch configmaps')).toBe(2);
  });

  it('re-lists after 410 Gone and goes on watching', async () => {
    cluster.resetRequestCounts();
    const seen = watchAll();
    await until('a watch', () => count('watch configmaps') >= 1);
    cluster.faults.expireWatches('configmaps');
    await until('the re-list', () => count('list configmaps') >= 2);
    const c = await createMap();
    await until('c', () => seen.includes(`ADDED ${c}`));
    expect(count('list configmaps')).toBe(2);
  });

  it('resumes a watch cut by the inactivity timeout from its version, without a re-list or a lost event', async () => {
    cluster.resetRequestCounts();
    const seen = watchAll({ inactivityTimeoutMs: 700 });
    await until('a watch', () => count('watch configmaps') >= 1);
    await sleep(3500);
    const d = await createMap();
    await until('d', () => seen.includes(`ADDED ${d}`));
    expect(count('watch configmaps')).toBeGreaterThanOrEqual(4);
    expect(count('list configmaps')).toBe(1);
    expect(seen.filter((s) => s === `ADDED ${d}`)).toHaveLength(1);
  });

  it('asks the server to end each watch after 5 to 10 minutes, as client-go does', async () => {
    watchAll();
    await until('a watch', () => cluster.openWatches('configmaps').length === 1);
    const [open] = cluster.openWatches('configmaps');
    expect(open!.timeoutSeconds).toBeGreaterThanOrEqual(300);
    expect(open!.timeoutSeconds).toBeLessThan(600);
    expect(open!.bookmarks).toBe(true);
  });

  it('resumes a watch the server ended at its timeoutSeconds from its version: no re-list, no failure, no lost event', async () => {
    const old = await createMap();
    cluster.resetRequestCounts();
    const logged: string[] = [];
    const seen = watchAll({ watchTimeoutSeconds: () => 3, logged });
    await until('a watch', () => count('watch configmaps') >= 1);
    const e = await createMap();
    await until('e', () => seen.includes(`ADDED ${e}`));
    await until('three server-ended watches', () => count('watch configmaps') >= 4, 30_000);
    const f = await createMap();
    await until('f', () => seen.includes(`ADDED ${f}`));
    expect(count('list configmaps')).toBe(1);
    expect(logged).toEqual([]);
    expect(seen.filter((s) => s === `ADDED ${old}`)).toHaveLength(1);
    expect(seen.filter((s) => s === `ADDED ${e}`)).toHaveLength(1);
    expect(seen.filter((s) => s === `ADDED ${f}`)).toHaveLength(1);
  }, 45_000);

  it("keeps a quiet watch open past client-node's 30 s default by default", async () => {
    cluster.resetRequestCounts();
    watchAll();
    await until('a watch', () => count('watch configmaps') >= 1);
    await sleep(31_000);
    expect(count('watch configmaps')).toBe(1);
  }, 45_000);
});
