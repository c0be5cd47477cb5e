/**
 * The kubernetes batch system on the test cluster, through the real CLI: worker pods are
 * separate processes, the job store is the AWS job store on a test S3 server.
 */
import { beforeEach, describe, expect, it } from '@jest/globals';
import { SHARED_TMP, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useK8sEnv } from './useK8sEnv.js';
import { alwaysFails, napsOnKubernetes } from '../workflows/args.js';
import { ANNOTATION_JOB_NAME } from '../../src/batch/kubernetesSpec.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv();
beforeEach(() => {
  k.cluster.resetRequestCounts();
});

describe('kubernetes batch system', () => {
  it('runs a fan-out as one Job per batch job and cleans up', async () => {
    const r = await toil(['run', workflow('../../examples/fanout.ts'), k.locator(), '--batchSystem', 'kubernetes', '--', '6'], {
      env: k.env,
    });
    expect(r.stderr).toMatch(/finished/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(55);
    const counts = k.cluster.requestCounts();
    expect(counts['create jobs']).toBeGreaterThanOrEqual(3);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);
});

type Pod = {
  metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  status?: { phase?: string };
};

/** The running worker pod of the first job whose name matches. */
async function runningPod(jobName: string, ms = 60_000): Promise<string> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const pods = k.cluster.list('pods') as Pod[];
    const p = pods.find((x) => x.status?.phase === 'Running' && x.metadata?.annotations?.[ANNOTATION_JOB_NAME] === jobName);
    if (p?.metadata?.name) return p.metadata.name;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no running pod for job '${jobName}'`);
}

describe('every ending explained', () => {
  it('a failing job: exit code and the log tail, after retries', async () => {
    const r = await toil(
      ['run', workflow('flaky.ts'), k.locator(), '--batchSystem', 'kubernetes', '--retryBackoff', '0', ...alwaysFails({ traceDir: t.dir })],
      { env: k.env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'always' \(always-[a-z0-9]+\): the job threw Error: this job always fails/);
    expect(r.stderr).toMatch(/\| always: attempt 2 about to fail/);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);

  it('an OOM-killed pod is reported as a memory failure', async () => {
    const run = startToil(napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 2, napMs: 6_000, flags: ['--retryCount', '0'] }), {
      env: k.env,
    });
    const pod = await runningPod('nap');
    await k.cluster.faults.oomKill('default', pod);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'nap' \(nap-[a-z0-9]+\): out of memory: the worker was OOM-killed at its limit of \d+ bytes/);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);

  it('an evicted (preempted) pod runs again without using up a try', async () => {
    const run = startToil(napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 2, napMs: 8_000, flags: ['--retryCount', '0'] }), {
      env: k.env,
    });
    const { waitFor } = await import('../helpers/run.js');
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'both naps to start');
    const pod = await runningPod('nap');
    await k.cluster.faults.evictPod('default', pod, { message: 'spot instance reclaimed' });
    const r = await run.done;
    expect(r.stderr).toMatch(/taken away/);
    expect(r.code).toBe(0);
    // Two naps, one of them run twice.
    expect((await traceLines(t.dir)).filter((l) => l.startsWith('nap '))).toHaveLength(3);
    expect(await traceLines(t.dir)).not.toContainEqual(expect.stringMatching(/^overlap/));
  }, 120_000);

  it('a lost node does not use up a try either', async () => {
    k.cluster.addNode({ name: 'spot-9' });
    const run = startToil(napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 4, napMs: 8_000, flags: ['--retryCount', '0'] }), {
      env: k.env,
    });
    await waitFor(async () => (await traceLines(t.dir)).length >= 4, 60_000, 'naps to start');
    const onSpot = (k.cluster.list('pods') as Array<Pod & { spec?: { nodeName?: string } }>).filter(
      (p) => p.spec?.nodeName === 'spot-9' && p.status?.phase === 'Running',
    );
    expect(onSpot.length).toBeGreaterThan(0);
    await k.cluster.faults.loseNode('spot-9');
    const r = await run.done;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) as unknown });
    const napped = (await traceLines(t.dir)).filter((l) => l.startsWith('nap '));
    expect(napped).toHaveLength(4 + onSpot.length);
  }, 120_000);

  it('an image that cannot be pulled fails fast, naming the image', async () => {
    k.cluster.faults.markImageMissing('registry.invalid/toil-ts:nope');
    const started = Date.now();
    const r = await toil(
      ['run', workflow('../../examples/helloworld.ts'), k.locator(), '--batchSystem', 'kubernetes', '--retryCount', '3'],
      {
        env: { ...k.env, TOIL_APPLIANCE_SELF: 'registry.invalid/toil-ts:nope' },
      },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot pull the worker image 'registry.invalid\/toil-ts:nope': (ErrImagePull|ImagePullBackOff)/);
    expect(r.stderr).not.toMatch(/retrying/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);

  it('a pod unschedulable past --kubernetesPodTimeout fails, naming the request and the reason', async () => {
    const r = await toil(
      ['run', workflow('chain.ts'), k.locator(), '--batchSystem', 'kubernetes', '--kubernetesPodTimeout', '2', '--', 'greedy'],
      { env: k.env },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /no node could take the worker pod for 2s \(--kubernetesPodTimeout\); it asks for 64 cores, .*; the scheduler says: .*(Insufficient cpu|cpu)/,
    );
    expect(k.leftoverJobs()).toBe(0);
  }, 120_000);
});

describe('resilience and clean ends', () => {
  it('survives dropped and expired watches and an API error storm without losing or doubling a job', async () => {
    const faults = [
      k.cluster.faults.failRequests({ verb: 'create', resource: 'jobs', status: 500, times: 4 }),
      k.cluster.faults.failRequests({ verb: 'delete', resource: 'jobs', status: 429, retryAfterSeconds: 1, times: 3 }),
      k.cluster.faults.failRequests({ verb: 'list', resource: 'pods', status: 503, times: 2 }),
      k.cluster.faults.failRequests({ verb: 'watch', resource: 'jobs', status: 500, times: 2 }),
    ];
    const run = startToil(['run', workflow('../../examples/fanout.ts'), k.locator(), '--batchSystem', 'kubernetes', '--', '12'], {
      env: k.env,
    });
    const dropper = setInterval(() => {
      k.cluster.faults.dropWatches();
    }, 1500);
    const expirer = setTimeout(() => k.cluster.faults.expireWatches(), 2500);
    const r = await run.done;
    clearInterval(dropper);
    clearTimeout(expirer);
    for (const f of faults) f.remove();
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(506);
    expect(r.stderr).toMatch(/14 job\(s\) run/);
    expect(faults[0]!.hits()).toBe(4);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);

  it('deletes every Job and pod of the workflow when the leader gets SIGTERM', async () => {
    const run = startToil(napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 2, napMs: 30_000 }), { env: k.env });
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    run.child.kill('SIGTERM');
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/received SIGTERM: stopping the workflow/);
    expect(k.leftoverJobs()).toBe(0);
    await waitFor(() => k.leftoverPods() === 0, 30_000, 'worker pods to go');
  }, 180_000);

  it('deletes every Job of the workflow when it is killed', async () => {
    const loc = k.locator();
    const run = startToil(napsOnKubernetes(loc, { traceDir: t.dir, count: 3, napMs: 30_000 }), { env: k.env });
    await waitFor(async () => (await traceLines(t.dir)).length >= 3, 60_000, 'naps to start');
    expect(k.leftoverJobs()).toBe(3);
    const killed = await toil(['kill', loc], { env: k.env });
    expect(killed.code).toBe(0);
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stopped by 'toil kill'/);
    expect(k.leftoverJobs()).toBe(0);
    await toil(['clean', loc], { env: k.env });
  }, 180_000);

  it('toil clean removes the worker Jobs of a leader that died', async () => {
    const loc = k.locator();
    const run = startToil(napsOnKubernetes(loc, { traceDir: t.dir, count: 2, napMs: 30_000 }), { env: k.env });
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    run.child.kill('SIGKILL');
    await run.done;
    expect(k.leftoverJobs()).toBe(2);
    const c = await toil(['clean', loc], { env: k.env });
    expect(c.stderr).toMatch(/deleted 2 worker Job\(s\)/);
    expect(c.code).toBe(0);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);
});

describe('configuration', () => {
  it('exits 2 before creating anything when there is no cluster', async () => {
    const loc = k.locator();
    const r = await toil(['run', workflow('../../examples/helloworld.ts'), loc, '--batchSystem', 'kubernetes'], {
      env: { ...k.env, KUBECONFIG: '/nonexistent/kubeconfig' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no Kubernetes configuration: \/nonexistent\/kubeconfig not found/);
    const s = await toil(['status', loc], { env: k.env });
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/does not exist/);
  });
  it('exits 2 when the cluster does not answer', async () => {
    const { readFile, writeFile } = await import('node:fs/promises');
    const path = await import('node:path');
    const cfg = (await readFile(k.cluster.kubeconfigPath, 'utf8')).replace(/https:\/\/127\.0\.0\.1:\d+/, 'https://127.0.0.1:9');
    await writeFile(path.join(t.dir, 'kubeconfig'), cfg);
    const r = await toil(['run', workflow('../../examples/helloworld.ts'), k.locator(), '--batchSystem', 'kubernetes'], {
      env: { ...k.env, KUBECONFIG: path.join(t.dir, 'kubeconfig') },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:9/);
  });
});
