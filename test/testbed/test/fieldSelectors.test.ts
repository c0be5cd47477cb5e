/**
 * Field selectors as a real API server answers them, seen by client-node and kubectl: each
 * resource's own field labels select on list and watch (with `=`, `==`, `!=` and conjunctions),
 * computed fields have the server's values (`status.successful` from `status.succeeded`,
 * `spec.hostNetwork=false` by default), and any other label or operator is a 400 with the
 * server's message — never an empty list.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, kubectl, raw, simpleJob, statusOf, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';

beforeAll(async () => {
  cluster = await startTestCluster({ jobBackoffBaseMs: 100, restartBackoffBaseMs: 100 });
  c = clients(cluster.kubeconfigPath);
  await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('fs-done', ['true']) });
  await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('fs-held', ['true'], { suspend: true }) });
  await jobDone(c.batch, ns, 'fs-done');
});
afterAll(async () => {
  await cluster?.stop();
});

const names = (l: { items: { metadata?: { name?: string } }[] }): string[] => l.items.map((i) => i.metadata?.name ?? '').sort();

async function refusal(p: Promise<unknown>): Promise<{ code: number; body: object }> {
  return statusOf(await p.then(() => new Error('the request was accepted')).catch((e: unknown) => e));
}

describe('supported field labels select', () => {
  test('jobs by status.successful (the count of succeeded pods), with = and !=', async () => {
    const one = await c.batch.listNamespacedJob({ namespace: ns, fieldSelector: 'status.successful=1' });
    expect(names(one)).toEqual(['fs-done']);
    const zero = await c.batch.listNamespacedJob({ namespace: ns, fieldSelector: 'status.successful==0' });
    expect(names(zero)).toEqual(['fs-held']);
    const notOne = await c.batch.listNamespacedJob({ namespace: ns, fieldSelector: 'status.successful!=1,metadata.namespace=default' });
    expect(names(notOne)).toEqual(['fs-held']);
  });

  test('pods by spec.hostNetwork (false when unset), the spec.host alias, phase and restart policy together', async () => {
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=fs-done' });
    const pod = pods.items[0]!;
    const node = pod.spec!.nodeName!;
    const noHostNet = await c.core.listNamespacedPod({
      namespace: ns,
      fieldSelector: 'spec.hostNetwork=false,metadata.name==' + pod.metadata!.name!,
    });
    expect(names(noHostNet)).toEqual([pod.metadata!.name!]);
    const hostNet = await c.core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.hostNetwork=true' });
    expect(hostNet.items).toEqual([]);
    const byHost = await c.core.listNamespacedPod({
      namespace: ns,
      fieldSelector: `spec.host=${node},status.phase=Succeeded,spec.restartPolicy=Never`,
    });
    expect(names(byHost)).toEqual([pod.metadata!.name!]);
    const notDone = await c.core.listNamespacedPod({ namespace: ns, fieldSelector: `spec.nodeName=${node},status.phase!=Succeeded` });
    expect(names(notDone)).not.toContain(pod.metadata!.name!);
    const byIps = await c.core.listNamespacedPod({ namespace: ns, fieldSelector: 'status.podIPs!=x' });
    expect(names(byIps)).toContain(pod.metadata!.name!);
  });

  test('events by involvedObject and reason; secrets by type; nodes by spec.unschedulable', async () => {
    const evs = await c.core.listNamespacedEvent({
      namespace: ns,
      fieldSelector: 'involvedObject.kind=Job,involvedObject.name=fs-done,reason=Completed',
    });
    expect(evs.items.length).toBeGreaterThan(0);
    expect(evs.items.every((e) => e.involvedObject.name === 'fs-done' && e.reason === 'Completed')).toBe(true);
    await c.core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'fs-secret' }, type: 'Opaque', stringData: { a: 'b' } },
    });
    expect(names(await c.core.listNamespacedSecret({ namespace: ns, fieldSelector: 'type=Opaque' }))).toEqual(['fs-secret']);
    const nodes = await c.core.listNode();
    const schedulable = await c.core.listNode({ fieldSelector: 'spec.unschedulable=false' });
    expect(names(schedulable)).toEqual(names(nodes));
  });

  test('a watch with a field selector sees a Job arrive once it has succeeded', async () => {
    const seen: string[] = [];
    const ctl = await new k8s.Watch(c.kc).watch(
      `/apis/batch/v1/namespaces/${ns}/jobs`,
      { fieldSelector: 'status.successful=1,metadata.name=fs-late' },
      (type, obj: k8s.V1Job) => seen.push(`${type} ${obj.metadata?.name} ${obj.status?.succeeded ?? 0}`),
      () => undefined,
    );
    await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('fs-late', ['true']) });
    await jobDone(c.batch, ns, 'fs-late');
    await until('the ADDED event', () => seen.length > 0, 5000);
    ctl.abort();
    expect(seen[0]).toBe('ADDED fs-late 1');
  });
});

describe('anything else is a 400 with the real message', () => {
  test.each([
    ['pods', () => c.core.listNamespacedPod({ namespace: ns, fieldSelector: 'spec.foo=bar' }), 'field label not supported: spec.foo'],
    [
      'pods',
      () => c.core.listNamespacedPod({ namespace: ns, fieldSelector: 'status.hostIP=1.2.3.4' }),
      'field label not supported: status.hostIP',
    ],
    [
      'jobs',
      () => c.batch.listNamespacedJob({ namespace: ns, fieldSelector: 'status.succeeded=1' }),
      'field label "status.succeeded" not supported for batchv1.Job',
    ],
    ['events', () => c.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'message=x' }), 'field label not supported: message'],
    ['secrets', () => c.core.listNamespacedSecret({ namespace: ns, fieldSelector: 'data.a=b' }), 'field label not supported: data.a'],
    ['nodes', () => c.core.listNode({ fieldSelector: 'metadata.namespace=default' }), 'field label not supported: metadata.namespace'],
    ['namespaces', () => c.core.listNamespace({ fieldSelector: 'name=default' }), 'field label not supported: name'],
    [
      'configmaps',
      () => c.core.listNamespacedConfigMap({ namespace: ns, fieldSelector: 'data.k=v' }),
      '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"',
    ],
    [
      'pods (set operator)',
      () => c.core.listNamespacedPod({ namespace: ns, fieldSelector: 'status.phase in (Running)' }),
      "invalid selector: 'status.phase in (Running)'; can't understand 'status.phase in (Running)'",
    ],
  ])('%s', async (_what, call, message) => {
    expect(await refusal(call())).toEqual({
      code: 400,
      body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 },
    });
  });

  test('a watch with an unsupported label is refused before any event', async () => {
    const r = await raw(c.kc, 'GET', `/apis/batch/v1/namespaces/${ns}/jobs?watch=1&fieldSelector=spec.suspend%3Dtrue`);
    expect(r.code).toBe(400);
    expect(r.body).toMatchObject({
      kind: 'Status',
      reason: 'BadRequest',
      message: 'field label "spec.suspend" not supported for batchv1.Job',
    });
  });
});

describe('kubectl --field-selector', () => {
  test('selects by a supported label and prints the server refusal for another', async () => {
    const ok = await kubectl(cluster.kubeconfigPath, ['get', 'jobs', '-n', ns, '--field-selector', 'status.successful=1', '-o', 'name']);
    expect(ok).toMatchObject({ code: 0 });
    expect(ok.stdout.trim().split('\n')).toContain('job.batch/fs-done');
    expect(ok.stdout).not.toContain('fs-held');
    const bad = await kubectl(cluster.kubeconfigPath, ['get', 'pods', '-n', ns, '--field-selector', 'spec.foo=bar']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('Error from server (BadRequest)');
    expect(bad.stderr).toContain('field label not supported: spec.foo');
  });
});
