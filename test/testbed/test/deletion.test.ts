/**
 * A Job deleted by someone else arrives at watchers as a real server sends it, for each
 * propagation policy: `kubectl delete job` (background: the Job goes at once, the garbage
 * collector then deletes its pods), a DELETE without a policy (for batch/v1 Jobs the default is
 * orphan: the Job is kept with the `orphan` finalizer until its pods are released, and they run
 * on), and foreground (the Job is kept with `foregroundDeletion` until its pods are gone).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, kubectl, raw, simpleJob, until } from '../src/cluster/testutil.js';

const ns = 'default';
let cluster: TestCluster;
let c: ReturnType<typeof clients>;

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }] });
  c = clients(cluster.kubeconfigPath);
});
afterAll(async () => {
  await cluster?.stop();
});

interface Seen {
  res: 'job' | 'pod';
  type: string;
  name: string;
  deleting: boolean;
  finalizers: string[];
  owned: boolean;
  phase?: string;
  /** the event's resourceVersion: the order of events across the two streams */
  rv: number;
}

/** Watches the Jobs and pods labelled `app=<app>` and records every event. */
async function record(app: string): Promise<{ seen: Seen[]; stop: () => void }> {
  const seen: Seen[] = [];
  const ctls: AbortController[] = [];
  for (const [res, path] of [
    ['job', `/apis/batch/v1/namespaces/${ns}/jobs`],
    ['pod', `/api/v1/namespaces/${ns}/pods`],
  ] as const) {
    const ctl = await new k8s.Watch(c.kc).watch(
      path,
      { labelSelector: `app=${app}` },
      (type, o: k8s.V1Pod | k8s.V1Job) =>
        seen.push({
          res,
          type,
          name: o.metadata?.name ?? '',
          deleting: !!o.metadata?.deletionTimestamp,
          finalizers: o.metadata?.finalizers ?? [],
          owned: (o.metadata?.ownerReferences ?? []).length > 0,
          rv: Number(o.metadata?.resourceVersion),
          ...(res === 'pod' ? { phase: (o as k8s.V1Pod).status?.phase } : {}),
        }),
      () => undefined,
    );
    ctls.push(ctl);
  }
  return { seen, stop: () => ctls.forEach((x) => x.abort()) };
}

/** A Job labelled app=<name> whose pod sleeps, once that pod runs; returns the pod's name. */
async function runningJob(name: string): Promise<string> {
  const job = simpleJob(name, ['sleep', '600']);
  job.metadata!.labels = { app: name };
  job.spec!.template.metadata = { labels: { app: name } };
  await c.batch.createNamespacedJob({ namespace: ns, body: job });
  return until(`the pod of ${name} to run`, async () => {
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: `job-name=${name}` });
    return pods.items.find((p) => p.status?.phase === 'Running')?.metadata?.name;
  });
}

const jobEvents = (seen: Seen[]) => seen.filter((s) => s.res === 'job' && s.type !== 'ADDED');
const podGone = (seen: Seen[], pod: string) => seen.some((s) => s.res === 'pod' && s.name === pod && s.type === 'DELETED');

describe('a Job deleted by someone else', () => {
  test('kubectl delete job (background): DELETED at once, then the garbage collector deletes the pod', async () => {
    const pod = await runningJob('del-bg');
    const w = await record('del-bg');
    const out = await kubectl(cluster.kubeconfigPath, ['delete', 'job', 'del-bg']);
    expect(out.stdout).toMatch('job.batch "del-bg" deleted');
    expect(out.stderr).toBe('');
    await until('the pod to go', () => podGone(w.seen, pod), 60_000);
    w.stop();
    const jobs = jobEvents(w.seen);
    expect(jobs).toEqual([expect.objectContaining({ type: 'DELETED', name: 'del-bg', deleting: false, finalizers: [] })]);
    const podEvents = w.seen.filter((s) => s.res === 'pod' && s.type !== 'ADDED');
    // every change of the pod comes after the Job's deletion: the garbage collector's work
    expect(podEvents[0]!.rv).toBeGreaterThan(jobs[0]!.rv);
    expect(podEvents.find((s) => s.type === 'MODIFIED')).toMatchObject({ deleting: true });
    expect(cluster.get('batch/jobs', ns, 'del-bg')).toBeUndefined();
  }, 90_000);

  test('DELETE without propagationPolicy (orphan for Jobs): the warning, orphan finalizer, DELETED; the pod runs on', async () => {
    const pod = await runningJob('del-orphan');
    const w = await record('del-orphan');
    const r = await raw(c.kc, 'DELETE', `/apis/batch/v1/namespaces/${ns}/jobs/del-orphan`);
    expect(r.code).toBe(200);
    expect(r.headers['warning']).toMatch(/child pods are preserved by default when jobs are deleted/);
    await until('the Job to go', () => jobEvents(w.seen).some((s) => s.type === 'DELETED'), 30_000);
    await until('the pod to be released', () =>
      w.seen.some((s) => s.res === 'pod' && s.name === pod && !s.owned && !s.finalizers.includes('batch.kubernetes.io/job-tracking')),
    );
    w.stop();
    const jobs = jobEvents(w.seen);
    expect(jobs[0]).toMatchObject({ type: 'MODIFIED', deleting: true, finalizers: ['orphan'] });
    expect(jobs.at(-1)).toMatchObject({ type: 'DELETED', deleting: true });
    const p = cluster.get('pods', ns, pod) as unknown as {
      metadata: { ownerReferences?: unknown; deletionTimestamp?: string };
      status: { phase: string };
    };
    expect(p.status.phase).toBe('Running');
    expect(p.metadata.ownerReferences).toBeUndefined();
    expect(p.metadata.deletionTimestamp).toBeUndefined();
    await c.core.deleteNamespacedPod({ namespace: ns, name: pod, gracePeriodSeconds: 0 });
  }, 90_000);

  test('foreground: the Job is kept with foregroundDeletion until its pod is gone, then DELETED', async () => {
    const pod = await runningJob('del-fg');
    const w = await record('del-fg');
    await c.batch.deleteNamespacedJob({ namespace: ns, name: 'del-fg', propagationPolicy: 'Foreground' });
    // the pod's and the Job's watches are separate streams: either may be read first
    const podGone = (): boolean => w.seen.some((s) => s.res === 'pod' && s.name === pod && s.type === 'DELETED');
    await until('the Job and its pod to go', () => jobEvents(w.seen).some((s) => s.type === 'DELETED') && podGone(), 60_000);
    w.stop();
    const jobs = jobEvents(w.seen);
    expect(jobs[0]).toMatchObject({ type: 'MODIFIED', deleting: true, finalizers: ['foregroundDeletion'] });
    expect(jobs.at(-1)).toMatchObject({ type: 'DELETED', deleting: true });
    const podDeleted = w.seen.find((s) => s.res === 'pod' && s.name === pod && s.type === 'DELETED');
    expect(podDeleted).toBeDefined();
    expect(podDeleted!.rv).toBeLessThan(jobs.at(-1)!.rv);
    // the garbage collector deletes the pod in the background (it has no dependents of its own)
    expect(w.seen.filter((s) => s.res === 'pod' && s.finalizers.includes('foregroundDeletion'))).toEqual([]);
  }, 90_000);
});
