/** Fault injection: API errors, dropped/expired watches, evictions, OOM kills, node loss, slow scheduling, missing images; request counters; cleanup. */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, raw, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';
const ignoreDisruption = { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] }] };

beforeAll(async () => {
  cluster = await startTestCluster({ jobBackoffBaseMs: 100, restartBackoffBaseMs: 100 });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
});

async function runningPodOf(job: string): Promise<k8s.V1Pod> {
  return until(`running pod of ${job}`, async () =>
    (await c.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${job}` })).items.find((p) => p.status?.phase === 'Running'),
  );
}

describe('API faults', () => {
  test('500, 429 with Retry-After and 409 on matching requests, for a number of times', async () => {
    const f500 = cluster.faults.failRequests({ verb: 'create', resource: 'jobs', status: 500, times: 1 });
    const e = await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('f1', ['true']) }).catch((x: unknown) => x);
    expect(statusOf(e).body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Internal error occurred: injected fault',
      reason: 'InternalError',
      details: { causes: [{ message: 'injected fault' }] },
      code: 500,
    });
    expect(f500.hits()).toBe(1);
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('f1', ['true']) });

    const f429 = cluster.faults.failRequests({ verb: 'list', resource: 'pods', status: 429, retryAfterSeconds: 2 });
    const r = await raw(c.kc, 'GET', `/api/v1/namespaces/${ns}/pods`);
    expect(r.code).toBe(429);
    expect(r.headers['retry-after']).toBe('2');
    expect(r.body).toMatchObject({
      reason: 'TooManyRequests',
      message: 'Too many requests, please try again later.',
      details: { retryAfterSeconds: 2 },
      code: 429,
    });
    const e429 = await c.core.listNamespacedPod({ namespace: ns }).catch((x: unknown) => x);
    expect(statusOf(e429).code).toBe(429);
    f429.remove();
    await c.core.listNamespacedPod({ namespace: ns });

    cluster.faults.failRequests({ verb: 'patch', resource: 'jobs', name: 'f1', status: 409, times: 1 });
    const e409 = await c.batch
      .patchNamespacedJob(
        { namespace: ns, name: 'f1', body: { metadata: { labels: { x: 'y' } } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch((x: unknown) => x);
    expect(statusOf(e409).body).toMatchObject({
      reason: 'Conflict',
      code: 409,
      message:
        'Operation cannot be fulfilled on jobs "f1": the object has been modified; please apply your changes to the latest version and try again',
    });
  });

  test('latency on matching requests', async () => {
    const d = cluster.faults.delayRequests({ verb: 'get', resource: 'jobs', ms: 300 });
    const t0 = Date.now();
    await c.batch.readNamespacedJob({ namespace: ns, name: 'f1' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    d.remove();
  });

  test("lagging watch events: one resource's stream falls behind another's, each in its own order", async () => {
    const seen: string[] = [];
    const rv = (await c.core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    const watchOf = (plural: string) =>
      new k8s.Watch(c.kc).watch(
        `/api/v1/namespaces/${ns}/${plural}`,
        { resourceVersion: rv },
        (t, o: { metadata?: { name?: string } }) => seen.push(`${plural} ${t} ${o.metadata?.name ?? ''}`),
        () => undefined,
      );
    const lag = cluster.faults.delayWatchEvents({ resource: 'configmaps', ms: 3000 });
    const ctls = await Promise.all([watchOf('configmaps'), watchOf('secrets')]);
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'lag-1' } } });
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'lag-2' } } });
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'lag-s' } } });
    await until('the event of the secret', () => seen.length > 0, 5000);
    expect(seen).toEqual(['secrets ADDED lag-s']);
    await until('the events of the config maps', () => seen.length === 3, 10_000);
    expect(seen).toEqual(['secrets ADDED lag-s', 'configmaps ADDED lag-1', 'configmaps ADDED lag-2']);
    lag.remove();
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'lag-3' } } });
    await until('no lag once removed', () => seen.length === 4, 5000);
    for (const ctl of ctls) ctl.abort();
  });

  test('request counts by verb and resource', async () => {
    cluster.resetRequestCounts();
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('counted', ['true']) });
    await c.batch.readNamespacedJob({ namespace: ns, name: 'counted' });
    await c.batch.listNamespacedJob({ namespace: ns, labelSelector: 'app=cluster-test' });
    const counts = cluster.requestCounts();
    expect(counts).toEqual({ 'create jobs': 1, 'get jobs': 1, 'list jobs': 1 });
  });

  test('dropped watches end cleanly; expired watches get 410 and resuming from the old version is refused', async () => {
    const rv = (await c.core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    const ended = new Promise<unknown>((resolve) => {
      void new k8s.Watch(c.kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv }, () => undefined, resolve);
    });
    await until('watch open', () => cluster.watchCount('configmaps') === 1, 5000);
    expect(cluster.faults.dropWatches('configmaps')).toBe(1);
    expect(await ended).toBeNull();

    const errors: unknown[] = [];
    const expired = new Promise<unknown>((resolve) => {
      void new k8s.Watch(c.kc).watch(
        `/api/v1/namespaces/${ns}/configmaps`,
        { resourceVersion: rv },
        (t, o) => {
          if (t === 'ERROR') errors.push(o);
        },
        resolve,
      );
    });
    await until('watch open', () => cluster.watchCount('configmaps') === 1, 5000);
    expect(cluster.faults.expireWatches('configmaps')).toBe(1);
    expect(await expired).toBeNull();
    expect(errors).toEqual([expect.objectContaining({ code: 410, reason: 'Expired' })]);
    const again: unknown[] = [];
    await new Promise<unknown>((resolve) => {
      void new k8s.Watch(c.kc).watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: rv }, (t, o) => again.push([t, o]), resolve);
    });
    expect(again).toEqual([
      ['ERROR', expect.objectContaining({ code: 410, reason: 'Expired', message: expect.stringMatching(/^too old resource version/) })],
    ]);
    // a client that re-lists can watch from the version it got, with no write in between
    const fresh = (await c.core.listNamespacedConfigMap({ namespace: ns })).metadata!.resourceVersion!;
    const got: string[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { resourceVersion: fresh },
      (t, o: k8s.V1ConfigMap) => got.push(`${t} ${o.metadata?.name ?? ''}`),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'after-expiry' } } });
    await until('event after re-list', () => got.length > 0, 5000);
    ctl.abort();
    expect(got).toEqual(['ADDED after-expiry']);
  });
});

describe('pod faults', () => {
  test('eviction (spot termination): DisruptionTarget, pod Failed/Evicted; podFailurePolicy Ignore does not count it and the Job still completes', async () => {
    await c.batch.createNamespacedJob({
      namespace: ns,
      body: simpleJob('ev', ['sh', '-c', 'if [ -e /tmp/evicted-$JOBMARK ]; then exit 0; fi; sleep 30'], {
        podFailurePolicy: ignoreDisruption,
      }),
    });
    const p = await runningPodOf('ev');
    await cluster.faults.evictPod(ns, p.metadata!.name!);
    const evicted = await until('pod failed', async () => {
      const x = await c.core.readNamespacedPod({ namespace: ns, name: p.metadata!.name! });
      return x.status?.phase === 'Failed' ? x : undefined;
    });
    expect(evicted.status?.reason).toBe('Evicted');
    expect(evicted.status?.conditions?.find((x) => x.type === 'DisruptionTarget')).toMatchObject({
      status: 'True',
      reason: 'TerminationByKubelet',
    });
    const second = await until('replacement pod', async () =>
      (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=ev' })).items.find(
        (x) => x.metadata?.name !== p.metadata?.name,
      ),
    );
    expect(second).toBeDefined();
    const j = await c.batch.readNamespacedJob({ namespace: ns, name: 'ev' });
    expect(j.status?.failed).toBeUndefined();
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'ev', propagationPolicy: 'Background' });
  });

  test('the Eviction API marks DisruptionTarget (EvictionByEvictionAPI) and deletes the pod', async () => {
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('ev2', ['sleep', '30'], { podFailurePolicy: ignoreDisruption }) });
    const p = await runningPodOf('ev2');
    const seen: k8s.V1Pod[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { fieldSelector: `metadata.name=${p.metadata!.name!}`, resourceVersion: p.metadata!.resourceVersion! },
      (_t, o: k8s.V1Pod) => seen.push(o),
      () => undefined,
    );
    await c.core.createNamespacedPodEviction({
      namespace: ns,
      name: p.metadata!.name!,
      body: { metadata: { name: p.metadata!.name!, namespace: ns } },
    });
    await until('pod deleted', async () =>
      c.core.readNamespacedPod({ namespace: ns, name: p.metadata!.name! }).then(
        () => false,
        () => true,
      ),
    );
    ctl.abort();
    expect(
      seen.some((x) => x.status?.conditions?.some((cd) => cd.type === 'DisruptionTarget' && cd.reason === 'EvictionByEvictionAPI')),
    ).toBe(true);
    await runningPodOf('ev2');
    expect((await c.batch.readNamespacedJob({ namespace: ns, name: 'ev2' })).status?.failed).toBeUndefined();
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'ev2', propagationPolicy: 'Background' });
  });

  test('OOM kill: container terminated with exit code 137 and reason OOMKilled; the Job fails', async () => {
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('oom', ['sleep', '30']) });
    const p = await runningPodOf('oom');
    await cluster.faults.oomKill(ns, p.metadata!.name!);
    const j = await jobDone(c.batch, ns, 'oom');
    expect(j.status?.conditions?.find((x) => x.type === 'Failed')?.reason).toBe('BackoffLimitExceeded');
    const after = await c.core.readNamespacedPod({ namespace: ns, name: p.metadata!.name! });
    expect(after.status?.phase).toBe('Failed');
    expect(after.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
  });

  test('a container using more memory than limits.memory is OOMKilled by the kubelet', async () => {
    const hog = simpleJob('hog', [process.execPath, '-e', 'const a = []; setInterval(() => { a.push(Buffer.alloc(16 << 20, 1)); }, 20);']);
    hog.spec!.template.spec!.containers[0]!.resources = { limits: { memory: '128Mi' } };
    await c.batch.createNamespacedJob({ namespace: ns, body: hog });
    const j = await jobDone(c.batch, ns, 'hog');
    expect(j.status?.failed).toBe(1);
    const p = (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=hog' })).items[0]!;
    expect(p.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    expect(p.status?.qosClass).toBe('Burstable'); // a memory limit alone, as the real QoS rules say
  });

  test('losing a node fails its pods with DisruptionTarget; the Job reschedules elsewhere and completes', async () => {
    const lost = simpleJob('lost', ['sh', '-c', 'if [ "$NODE" = node-2 ]; then sleep 30; fi; echo ok'], {
      podFailurePolicy: ignoreDisruption,
    });
    lost.spec!.template.spec!.containers[0]!.env = [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }];
    // pin the first pod to node-2 by cordoning node-1 briefly
    await c.core.patchNode(
      { name: 'node-1', body: { spec: { unschedulable: true } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await c.batch.createNamespacedJob({ namespace: ns, body: lost });
    const p = await until('pod on node-2', async () =>
      (await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=lost' })).items.find(
        (x) => x.spec?.nodeName === 'node-2' && x.status?.phase === 'Running',
      ),
    );
    await c.core.patchNode(
      { name: 'node-1', body: { spec: { unschedulable: false } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const seen: k8s.V1Pod[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      `/api/v1/namespaces/${ns}/pods`,
      { labelSelector: 'job-name=lost', resourceVersion: p.metadata!.resourceVersion! },
      (_t, o: k8s.V1Pod) => seen.push(o),
      () => undefined,
    );
    await cluster.faults.loseNode('node-2');
    const j = await jobDone(c.batch, ns, 'lost');
    ctl.abort();
    expect(j.status?.succeeded).toBe(1);
    expect(j.status?.failed).toBeUndefined();
    const lostPod = seen.filter((x) => x.metadata?.name === p.metadata?.name).pop()!;
    expect(lostPod.status?.phase).toBe('Failed');
    expect(lostPod.status?.conditions?.find((x) => x.type === 'DisruptionTarget')).toMatchObject({
      reason: 'DeletionByPodGC',
      message: 'PodGC: node no longer exists',
    });
    expect((await c.core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['node-1']);
    expect(cluster.runningPids()).toEqual([]);
  });
});

describe('scheduling and image faults', () => {
  test('delayed scheduling keeps pods Pending for the delay', async () => {
    cluster.faults.delayScheduling(1500);
    const t0 = Date.now();
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'slow-sched' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'busybox', command: ['true'] }] },
      },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect((await c.core.readNamespacedPod({ namespace: ns, name: 'slow-sched' })).spec?.nodeName).toBeUndefined();
    await until('scheduled', async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'slow-sched' })).spec?.nodeName);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    cluster.faults.delayScheduling(0);
  });

  test('a missing image gives ErrImagePull then ImagePullBackOff, with events; once present the pod runs', async () => {
    cluster.faults.markImageMissing('registry.example/toil:missing');
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'noimg' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'registry.example/toil:missing', command: ['true'] }] },
      },
    });
    const states = new Set<string>();
    await until(
      'both waiting reasons',
      async () => {
        const p = await c.core.readNamespacedPod({ namespace: ns, name: 'noimg' });
        const w = p.status?.containerStatuses?.[0]?.state?.waiting;
        if (w?.reason) states.add(w.reason);
        if (w?.reason === 'ErrImagePull') expect(w.message).toContain('Failed to pull image "registry.example/toil:missing"');
        return states.has('ErrImagePull') && states.has('ImagePullBackOff');
      },
      10_000,
      20,
    );
    const evs = (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=noimg' })).items.map(
      (e) => `${e.reason}: ${e.message}`,
    );
    expect(evs).toContain('Failed: Error: ErrImagePull');
    expect(evs).toContain('BackOff: Back-off pulling image "registry.example/toil:missing"');
    expect((await c.core.readNamespacedPod({ namespace: ns, name: 'noimg' })).status?.phase).toBe('Pending');
    cluster.faults.unmarkImageMissing('registry.example/toil:missing');
    await until(
      'ran',
      async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'noimg' })).status?.phase === 'Succeeded',
      10_000,
    );
  });
});

describe('images and termination messages', () => {
  test('an invalid image reference is InvalidImageName; FallbackToLogsOnError puts the log tail in the termination message', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'badref' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'Toil/Bad:1', command: ['true'] }] },
      },
    });
    const w = await until(
      'InvalidImageName',
      async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'badref' })).status?.containerStatuses?.[0]?.state?.waiting,
    );
    expect(w.reason).toBe('InvalidImageName');
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'tmsg' },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'm',
              image: 'busybox',
              command: ['sh', '-c', 'echo first; echo boom; exit 2'],
              terminationMessagePolicy: 'FallbackToLogsOnError',
            },
          ],
        },
      },
    });
    const t = await until(
      'terminated',
      async () => (await c.core.readNamespacedPod({ namespace: ns, name: 'tmsg' })).status?.containerStatuses?.[0]?.state?.terminated,
    );
    expect(t).toMatchObject({ exitCode: 2, reason: 'Error', message: 'first\nboom' });
  });
});

describe('lifecycle', () => {
  test('stop() kills every pod process', async () => {
    const other = await startTestCluster({ nodes: [{ name: 'n' }] });
    const oc = clients(other.kubeconfigPath);
    await oc.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'forever' },
        spec: { containers: [{ name: 'm', image: 'busybox', command: ['sh', '-c', 'sleep 300 & sleep 300'] }] },
      },
    });
    await until('running', async () => (await oc.core.readNamespacedPod({ namespace: ns, name: 'forever' })).status?.phase === 'Running');
    const pids = other.runningPids();
    expect(pids).toHaveLength(1);
    await other.stop();
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(pids.filter(alive)).toEqual([]);
  });
});

describe('crash safety', () => {
  test('if the process running the cluster dies, every process of its pods dies with it', async () => {
    const { startTestClusterProcess } = await import('../src/cluster/process.js');
    const { readdirSync, readFileSync } = await import('node:fs');
    const child = await startTestClusterProcess({ nodes: [{ name: 'solo' }] });
    const cc = clients(child.kubeconfigPath);
    await cc.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'tree' },
        spec: { containers: [{ name: 'm', image: 'busybox', command: ['sh', '-c', 'sleep 300 & sleep 300 & wait'] }] },
      },
    });
    await until('running', async () => (await cc.core.readNamespacedPod({ namespace: ns, name: 'tree' })).status?.phase === 'Running');
    const [leader] = (await child.runningPids()) as number[];
    const group = (): number[] =>
      readdirSync('/proc')
        .filter((d) => /^\d+$/.test(d))
        .filter((d) => {
          try {
            const st = readFileSync(`/proc/${d}/stat`, 'utf8');
            return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[2]) === leader;
          } catch {
            return false;
          }
        })
        .map(Number);
    await until('the sleeps started', () => group().length >= 5, 5000);
    process.kill(child.pid, 'SIGKILL');
    await until('all pod processes gone', () => group().length === 0, 5000);
    await child.stop();
    const { rmSync } = await import('node:fs');
    rmSync(child.stateDir, { recursive: true, force: true }); // nobody was left to clean it up
  });
});

describe('child-process mode', () => {
  test('startTestClusterProcess: same API over a control endpoint; stop() leaves nothing running', async () => {
    const { startTestClusterProcess } = await import('../src/cluster/process.js');
    const child = await startTestClusterProcess({ nodes: [{ name: 'solo' }] });
    try {
      const cc = clients(child.kubeconfigPath);
      const f = await child.faults.failRequests({ verb: 'create', resource: 'jobs', status: 500, times: 1 });
      expect(
        statusOf(await cc.batch.createNamespacedJob({ namespace: ns, body: simpleJob('cp', ['sleep', '30']) }).catch((e: unknown) => e))
          .code,
      ).toBe(500);
      expect(await f.hits()).toBe(1);
      await cc.batch.createNamespacedJob({ namespace: ns, body: simpleJob('cp', ['sleep', '30']) });
      const p = await until('running', async () =>
        (await cc.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=cp' })).items.find((x) => x.status?.phase === 'Running'),
      );
      expect(await child.runningPids()).toHaveLength(1);
      await child.faults.oomKill(ns, p.metadata!.name!);
      const j = await jobDone(cc.batch, ns, 'cp');
      expect(j.status?.failed).toBe(1);
      expect((await child.requestCounts())['create jobs']).toBe(2);
    } finally {
      await child.stop();
    }
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive(child.pid)).toBe(false);
  });
});
