/**
 * The right verdict on the test cluster as a real one behaves: the Job and pod watches are
 * separate streams that can lag one another, failed attempts are told by their own pod's log,
 * and a restarted leader never takes an earlier leader's pod for one of its own.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { useTestS3Env } from '@toil-ts/testbed/s3';
import { SHARED_TMP, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { naps, napsOnKubernetes } from '../workflows/args.js';
import { ANNOTATION_JOB_NAME, LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';
import { POD_LOG_LIMIT_BYTES, POD_LOG_TAIL_LINES } from '../../src/batch/podLogs.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { useK8sEnv } from './useK8sEnv.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv();
afterEach(() => k.cluster.faults.clearRequestFaults());
let restoreEnv: () => void = () => {};
beforeAll(() => {
  // The test's own job store handle reaches the same S3 server as the pods.
  restoreEnv = useTestS3Env(k.s3);
});
afterAll(() => restoreEnv());

type Pod = {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec?: { nodeName?: string };
  status?: { phase?: string };
};

/** The worker pods in the cluster now. */
function workerPods(): Pod[] {
  return (k.cluster.list('pods') as Pod[]).filter((p) => p.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY);
}

/** The running worker pod of a job whose name matches, read from the cluster's store. */
async function runningPod(jobName: RegExp, ms = 60_000): Promise<string> {
  let name: string | undefined;
  await waitFor(
    () => {
      const pods = k.cluster.list('pods') as Pod[];
      const running = pods.find((p) => p.status?.phase === 'Running' && jobName.test(p.metadata?.annotations?.[ANNOTATION_JOB_NAME] ?? ''));
      name = running?.metadata?.name;
      return name !== undefined;
    },
    ms,
    `a running pod of a job named ${jobName}`,
  );
  return name!;
}

describe("the verdict comes from the pod's final state, whichever event comes first", () => {
  it("a job that exits with code 3 is told so when the Job's Failed event overtakes the pod's", async () => {
    k.cluster.faults.delayWatchEvents({ resource: 'pods', ms: 4000 });
    const r = await toil(['run', workflow('exit-output.ts'), k.locator(), '--batchSystem', 'kubernetes', '--retryCount', '0'], {
      env: k.env,
    });
    expect(r.code).toBe(1);
    // The pod's exit code, and how the worker's last line says it came about.
    expect(r.stderr).toMatch(/job 'wrapper' \(wrapper-[a-z0-9]+\): the job called process\.exit\(3\)/);
    expect(r.stderr).not.toMatch(/the Job failed/);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);

  it("an OOM-killed worker is told so when the Job's Failed event overtakes the pod's", async () => {
    k.cluster.faults.delayWatchEvents({ resource: 'pods', ms: 4000 });
    const run = startToil(napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 1, napMs: 30_000, flags: ['--retryCount', '0'] }), {
      env: k.env,
    });
    // One nap: the worker of its parent job runs it too (chained), in the same pod.
    await waitFor(async () => (await traceLines(t.dir)).length >= 1, 60_000, 'the nap to start');
    await k.cluster.faults.oomKill('default', await runningPod(/^naps?$/));
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'nap' \(nap-[a-z0-9]+\): out of memory: the worker was OOM-killed/);
    expect(r.stderr).not.toMatch(/the Job failed/);
  }, 120_000);
});

describe("a failed attempt's log tail", () => {
  // on executors the tail is what the executor's pool kept of the job's process (localPool.ts), within the same bounds
  it.each([
    ['a pod per job', {}],
    ['executor pods', { TOIL_KUBERNETES_EXECUTORS: 'true' }],
  ])(
    "is that attempt's last lines, within the bound: a chatty job's final error, in the report and the stored log (%s)",
    async (_mode, modeEnv) => {
      const loc = k.locator();
      // 2500 lines of 1.5 kB: the last 40 lines alone are more than the byte bound
      const r = await toil(
        [
          'run',
          workflow('chatty.ts'),
          loc,
          '--batchSystem',
          'kubernetes',
          '--retryCount',
          '1',
          '--retryBackoff',
          '0',
          '--',
          t.dir,
          '2500',
          '1500',
        ],
        { env: { ...k.env, ...modeEnv } },
      );
      expect(r.code).toBe(1);
      const report = r.stderr.slice(r.stderr.indexOf('workflow failed'));
      expect(report).toMatch(/\| FATAL \(attempt 2\): reference chr1\.fa is truncated/);
      expect(report).not.toMatch(/attempt 1/);
      expect(Buffer.byteLength(report)).toBeLessThan(POD_LOG_LIMIT_BYTES + 2000);
      const jobId = /job 'chatty' \((chatty-[a-z0-9]+)\)/.exec(report)?.[1];
      expect(jobId).toBeDefined();
      const stored = (await (await openJobStore(loc)).readJobLog(jobId!)) ?? '';
      expect(stored).toMatch(/FATAL \(attempt 2\): reference chr1\.fa is truncated\n/);
      expect(stored).toMatch(/^attempt 2 progress 2500 \.+$/m);
      expect(stored).not.toMatch(/attempt 1/);
      expect(Buffer.byteLength(stored)).toBeLessThanOrEqual(POD_LOG_LIMIT_BYTES);
      expect(stored.trimEnd().split('\n').length).toBeLessThanOrEqual(POD_LOG_TAIL_LINES);
      await toil(['clean', loc], { env: k.env });
    },
    180_000,
  );

  it('holds the final error of a job that ends its process at once, its output still queued', async () => {
    const r = await toil(
      [
        'run',
        workflow('chatty.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--retryCount',
        '0',
        '--',
        t.dir,
        '2500',
        '1500',
        'exit-at-once',
      ],
      { env: k.env },
    );
    expect(r.code).toBe(1);
    const report = r.stderr.slice(r.stderr.indexOf('workflow failed'));
    expect(report).toMatch(/\| FATAL \(attempt 1\): reference chr1\.fa is truncated/);
    expect(report.match(/^ +\| attempt 1 progress 2500 /gm)).toHaveLength(1);
  }, 180_000);
});

describe('restart safety', () => {
  it('a restarted leader never takes a pod of the earlier leader for one of its jobs', async () => {
    const loc = k.locator();
    const args = ['run', workflow('slow.ts'), loc, '--batchSystem', 'kubernetes'];
    const first = startToil([...args, ...naps({ traceDir: t.dir, count: 2, napMs: 10_000 })], { env: k.env });
    await waitFor(async () => (await traceLines(t.dir)).filter((l) => l.startsWith('nap')).length >= 2, 60_000, 'naps to start');
    const old = workerPods().map((p) => ({ name: p.metadata!.name!, labels: p.metadata!.labels!, annotations: p.metadata!.annotations! }));
    expect(old).toHaveLength(2);
    first.child.kill('SIGKILL');
    await first.done;

    const second = startToil([...args, '--restart'], { env: k.env });
    await waitFor(
      () => workerPods().filter((p) => p.status?.phase === 'Running' && !old.some((o) => o.name === p.metadata?.name)).length >= 2,
      90_000,
      'the new leader’s pods to run',
    );
    // A pod labelled as the earlier leader labelled its pods appears now (as a late create of the
    // dead leader's, or its Job controller's replacement pod, would), and cannot pull its image.
    k.cluster.faults.markImageMissing('registry.invalid/earlier:gone');
    const late = old.map((o) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${o.name}-late`, labels: o.labels, annotations: o.annotations },
      spec: { restartPolicy: 'Never', containers: [{ name: 'worker', image: 'registry.invalid/earlier:gone', command: ['true'] }] },
    }));
    for (const body of late) {
      const made = await kubectl(k.cluster.kubeconfigPath, ['create', '-f', '-'], JSON.stringify(body));
      expect(made.stderr).toBe('');
    }
    const r = await second.done;
    for (const body of late) await kubectl(k.cluster.kubeconfigPath, ['delete', 'pod', body.metadata.name, '--wait=false']);
    expect(r.stderr).not.toMatch(/cannot pull the worker image/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(2);
  }, 240_000);

  it('--restart waits for the earlier leader’s pods to go, and fails naming those that stay, without starting beside them', async () => {
    const loc = k.locator();
    const args = ['run', workflow('slow.ts'), loc, '--batchSystem', 'kubernetes'];
    // The held pods stay (deleted, not gone) whether or not their naps have ended.
    const first = startToil([...args, ...naps({ traceDir: t.dir, count: 2, napMs: 6_000 })], { env: k.env });
    await waitFor(async () => (await traceLines(t.dir)).filter((l) => l.startsWith('nap')).length >= 2, 60_000, 'naps to start');
    const old = workerPods().map((p) => p.metadata!.name!);
    expect(old).toHaveLength(2);
    // A finalizer of someone else's holds the pods: deleted, they stay until it is taken off.
    const hold = (finalizers: string[] | null) =>
      Promise.all(
        old.map((name) =>
          kubectl(k.cluster.kubeconfigPath, ['patch', 'pod', name, '--type', 'merge', '-p', JSON.stringify({ metadata: { finalizers } })]),
        ),
      );
    await hold(['example.com/hold']);
    first.child.kill('SIGKILL');
    await first.done;

    k.cluster.resetRequestCounts();
    const refused = await toil([...args, '--restart', '--kubernetesRestartWait', '4'], { env: k.env });
    expect(refused.stderr).toMatch(/deleting 2 worker Job\(s\) left by an earlier leader/);
    expect(refused.stderr).toMatch(/waiting for 2 pod\(s\) of an earlier leader of this workflow to go \(\d+s of at most 4s\)/);
    expect(refused.stderr).toMatch(/2 pod\(s\) of an earlier leader of this workflow are still there after 4s/);
    for (const name of old) expect(refused.stderr).toContain(`${name} (`);
    expect(refused.stderr).toMatch(/being deleted, held by finalizer example\.com\/hold\)/);
    expect(refused.code).toBe(1);
    expect(k.cluster.requestCounts()['create jobs'] ?? 0).toBe(0);
    expect((await traceLines(t.dir)).filter((l) => l.startsWith('nap'))).toHaveLength(2);

    await hold(null);
    await waitFor(() => workerPods().length === 0, 30_000, 'the held pods to go');
    const r = await toil([...args, '--restart'], { env: k.env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(2);
    expect((await traceLines(t.dir)).filter((l) => l.startsWith('overlap'))).toEqual([]);
  }, 400_000);
});
