/**
 * Benchmark: start the test cluster, run N trivial Jobs (`true`) to completion through
 * @kubernetes/client-node (create + one watch), stop the cluster. Prints the timings and the API
 * requests per Job.
 *
 *   npx tsx bench/cluster-jobs.ts [N]
 */
import * as k8s from '@kubernetes/client-node';
import { startTestCluster } from '@toil-ts/testbed/cluster';

const n = Number(process.argv[2] ?? '200');
const t0 = performance.now();
const cluster = await startTestCluster({ nodes: [{ name: 'node-1' }, { name: 'node-2' }] });
const t1 = performance.now();
const kc = new k8s.KubeConfig();
kc.loadFromFile(cluster.kubeconfigPath);
const batch = kc.makeApiClient(k8s.BatchV1Api);
const ns = cluster.namespace;

const done = new Set<string>();
let resolveAll: () => void = () => {};
const allDone = new Promise<void>((r) => {
  resolveAll = r;
});
const list = await batch.listNamespacedJob({ namespace: ns, labelSelector: 'bench=cluster-jobs' });
const ctl = await new k8s.Watch(kc).watch(
  `/apis/batch/v1/namespaces/${ns}/jobs`,
  { labelSelector: 'bench=cluster-jobs', resourceVersion: list.metadata!.resourceVersion! },
  (_type, job: k8s.V1Job) => {
    if ((job.status?.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')) {
      done.add(job.metadata!.name!);
      if (done.size === n) resolveAll();
    }
  },
  () => undefined,
);

const body = (i: number): k8s.V1Job => ({
  metadata: { name: `bench-${i}`, labels: { bench: 'cluster-jobs' } },
  spec: {
    backoffLimit: 0,
    ttlSecondsAfterFinished: 600,
    template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } },
  },
});
const queue = Array.from({ length: n }, (_, i) => i);
await Promise.all(
  Array.from({ length: 16 }, async () => {
    for (let i = queue.shift(); i !== undefined; i = queue.shift()) await batch.createNamespacedJob({ namespace: ns, body: body(i) });
  }),
);
const t2 = performance.now();
await allDone;
const t3 = performance.now();
ctl.abort();
const failed = (await batch.listNamespacedJob({ namespace: ns, labelSelector: 'bench=cluster-jobs' })).items.filter((j) =>
  (j.status?.conditions ?? []).some((c) => c.type === 'Failed' && c.status === 'True'),
).length;
const counts = cluster.requestCounts();
await cluster.stop();
const t4 = performance.now();
const total = Object.values(counts).reduce((a, b) => a + b, 0);
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
console.log(`cluster-jobs: ${n} Jobs (${failed} failed)`);
console.log(`  start cluster      ${s(t1 - t0)}`);
console.log(`  create ${n} Jobs    ${s(t2 - t1)}`);
console.log(`  all complete after ${s(t3 - t1)}`);
console.log(`  stop cluster       ${s(t4 - t3)}`);
console.log(`  total              ${s(t4 - t0)}`);
console.log(`  API requests: ${total} (${(total / n).toFixed(2)} per Job): ${JSON.stringify(counts)}`);
