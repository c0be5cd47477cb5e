/**
 * Pod logs as a real node gives them: containerd writes a line longer than 16 KiB as partial
 * entries, the kubelet's `tailLines` counts entries, and `limitBytes` cuts what follows the
 * start of the tail (the first bytes of the last lines, not the last bytes).
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, simpleJob } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let c: ReturnType<typeof clients>;
const ns = 'default';
let pod = '';

const LONG = 40_000;
// 50 lines of 910 bytes, one line of 40 000 bytes, then a last line
const SCRIPT = `for i in $(seq 1 50); do printf "line %02d %0900d\\n" $i 0; done; head -c ${LONG} /dev/zero | tr "\\000" x; echo; echo "the end"`;

beforeAll(async () => {
  cluster = await startTestCluster();
  c = clients(cluster.kubeconfigPath);
  await c.batch.createNamespacedJob({ namespace: ns, body: simpleJob('chatty', ['sh', '-c', SCRIPT]) });
  await jobDone(c.batch, ns, 'chatty');
  const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=chatty' });
  pod = pods.items[0]!.metadata!.name!;
});
afterAll(async () => {
  await cluster?.stop();
});

const log = (q: { tailLines?: number; limitBytes?: number } = {}) => c.core.readNamespacedPodLog({ namespace: ns, name: pod, ...q });

describe('pod logs, tailLines and limitBytes', () => {
  test('a line longer than 16 KiB is stored as partial entries and read back whole', async () => {
    const all = await log();
    const lines = all.split('\n');
    expect(lines).toHaveLength(53);
    expect(lines[50]).toBe('x'.repeat(LONG));
    expect(lines[51]).toBe('the end');
  });

  test('tailLines counts entries: the last entry of a long line is its end', async () => {
    expect(await log({ tailLines: 1 })).toBe('the end\n');
    expect(await log({ tailLines: 2 })).toBe(`${'x'.repeat(LONG - 2 * 16 * 1024)}\nthe end\n`);
  });

  test('limitBytes with tailLines keeps the first bytes of the tail, as the kubelet does', async () => {
    const text = await log({ tailLines: 5, limitBytes: 1000 });
    expect(Buffer.byteLength(text)).toBe(1000);
    expect(text.startsWith(`line 50 ${'0'.repeat(900)}\nxxx`)).toBe(true);
    expect(text).not.toMatch(/the end/);
  });

  test('FallbackToLogsOnError: the last 2048 bytes of the last 80 entries, a long line whole', async () => {
    const long = 2 * 16 * 1024 + 100;
    const script = `head -c ${long} /dev/zero | tr "\\000" x; echo; echo "the end"; exit 1`;
    const job = simpleJob('fallback', ['sh', '-c', script]);
    job.spec!.template.spec!.containers[0]!.terminationMessagePolicy = 'FallbackToLogsOnError';
    await c.batch.createNamespacedJob({ namespace: ns, body: job });
    await jobDone(c.batch, ns, 'fallback');
    const pods = await c.core.listNamespacedPod({ namespace: ns, labelSelector: 'job-name=fallback' });
    const term = pods.items[0]!.status!.containerStatuses![0]!.state!.terminated!;
    expect(term.exitCode).toBe(1);
    expect(term.message).toBe(`${'x'.repeat(2048 - '\nthe end'.length)}\nthe end`);
  });
});
