/**
 * The kubernetes batch system against what real kubelets do that a kind test cluster would not:
 * local storage evictions, pods taken away again and again, volumes whose secret does not
 * exist, image pulls that fail for a while. Each case runs on the test cluster with the real
 * behaviour turned on (the eviction manager only checks faster than every 10 s).
 */
import { describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { ROOT, SHARED_TMP, startToil, workflow, type RunResult } from '../helpers/run.js';
import { napsOnKubernetes } from '../workflows/args.js';
import { ANNOTATION_JOB_NAME } from '../../src/batch/kubernetesSpec.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useK8sEnv } from './useK8sEnv.js';

const t = useTempStore(SHARED_TMP);
// the real kubelet's timing, only faster: eviction checks every 0.5 s (not 10 s), pull back-off
// from 1 s (not 10 s), the volume wait's 'Unable to attach or mount volumes' after 1 s (not 2m3s)
const k = useK8sEnv({ evictionIntervalMs: 500, restartBackoffBaseMs: 1000, mountTimeoutMs: 1000 });
/** Pods that never start and pods taken away reach jobs in both modes: a pod each, or executor pods that run them. */
const MODES: [string, NodeJS.ProcessEnv][] = [
  ['a pod per job', {}],
  ['executor pods', { TOIL_KUBERNETES_EXECUTORS: 'true' }],
];

/** Runs toil; one still running after `ms` is stopped with SIGTERM (it cleans up), so a hang fails the test with its log. */
async function toilWithin(ms: number, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult & { stopped: boolean }> {
  const run = startToil(args, { env });
  let stopped = false;
  const timer = setTimeout(() => {
    stopped = true;
    run.child.kill('SIGTERM');
  }, ms);
  const r = await run.done;
  clearTimeout(timer);
  return { ...r, stopped };
}

/** The cluster's environment without the host path: the node cache (and jobs' temp dirs) live in an emptyDir. */
function envWithoutHostPath(): NodeJS.ProcessEnv {
  const env = { ...k.env };
  delete env['TOIL_KUBERNETES_HOST_PATH'];
  return env;
}

describe('local storage', () => {
  it('a job writing beyond its disk requirement is evicted, uses up its tries and is told so', async () => {
    const wf = path.join(t.dir, 'hog.ts');
    await writeFile(
      wf,
      `import { defineJob } from 'toil-ts';
       import { writeFileSync } from 'node:fs';
       import { join } from 'node:path';
       const hog = defineJob('hog', async (ctx) => {
         writeFileSync(join(await ctx.fileStore.localTempDir(), 'big'), Buffer.alloc(40_000_000, 1));
         await new Promise((r) => setTimeout(r, 30_000));
         return 'not evicted';
       });
       export default function () { return hog().require({ disk: '20M' }); }`,
    );
    const r = await toilWithin(
      120_000,
      ['run', wf, k.locator(), '--batchSystem', 'kubernetes', '--retryCount', '1', '--retryBackoff', '0'],
      envWithoutHostPath(),
    );
    expect(r.stopped ? `stopped after 120 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'hog' \(hog-[a-z0-9]+\): out of disk: the pod was evicted for using more local storage than its disk request of 20000000 bytes/,
    );
    expect(r.stderr).toMatch(/Pod ephemeral local storage usage exceeds the total limit of containers 20M/);
    expect(r.stderr).not.toMatch(/taken away/);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);

  it('on executor pods, a job writing beyond its slot is killed alone and told so, before the kubelet evicts the pod; its neighbours finish', async () => {
    const r = await toilWithin(
      120_000,
      [
        'run',
        workflow('executors.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--kubernetesExecutors',
        '--retryCount',
        '0',
        '--',
        'disk',
        t.dir,
      ],
      envWithoutHostPath(),
    );
    expect(r.stopped ? `stopped after 120 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'scribbler' \(scribbler-[a-z0-9]+\): out of disk: the job held [\d.]+ MiB in its temporary directory, over the 256 MiB it was given, and was killed \(alone/,
    );
    expect(r.stderr).toMatch(/1 job\(s\) failed/);
    expect(r.stderr).not.toMatch(/evicted|taken away/);
    expect([await t.count('n1'), await t.count('n2'), await t.count('scribbler')]).toEqual([1, 1, 1]);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);
});

type Pod = { metadata?: { name?: string; annotations?: Record<string, string> }; status?: { phase?: string } };

describe.each(MODES)('disruptions (%s)', (mode, modeEnv) => {
  it('a job whose pod is taken away again and again fails after --kubernetesMaxDisruptions, saying so', async () => {
    const run = toilWithin(
      120_000,
      napsOnKubernetes(k.locator(), { traceDir: t.dir, count: 1, napMs: 60_000, flags: ['--retryCount', '0'] }),
      { ...k.env, ...modeEnv },
    );
    // spot reclaim of every pod the job gets, as soon as it runs
    let ended = false;
    const evicted = new Set<string>();
    const reclaim = (async () => {
      while (!ended) {
        const pods = (k.cluster.list('pods') as Pod[]).filter(
          (p) =>
            p.status?.phase === 'Running' && p.metadata?.annotations?.[ANNOTATION_JOB_NAME] !== undefined && !evicted.has(p.metadata.name!),
        );
        for (const p of pods) {
          evicted.add(p.metadata!.name!);
          await k.cluster.faults.evictPod('default', p.metadata!.name!, { message: 'spot instance reclaimed' }).catch(() => undefined);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const r = await run;
    ended = true;
    await reclaim;
    expect(r.stopped ? `stopped after 120 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    // on executors: the job lost with its executor, or its executor taken away before it started (counted per shape)
    const onExecutors = modeEnv['TOIL_KUBERNETES_EXECUTORS'] !== undefined;
    const [fifth, tooMany] = onExecutors
      ? [
          /was taken away before it started \(5 in a row|its executor \S+ ended \(preempted: the pod was taken away \(TerminationByKubelet: spot instance reclaimed\).* with 1 job\(s\) on it/,
          /job 'naps' \(naps-[a-z0-9]+\): (it lost its executor 6 times|its executor pods were taken away 6 times in a row before one started), more than the 5 that --kubernetesMaxDisruptions allows/,
        ]
      : [
          /taken away \(TerminationByKubelet: spot instance reclaimed\); it will run again without using up a try \(5 of 5 allowed/,
          /job 'naps' \(naps-[a-z0-9]+\): the worker pod was taken away 6 times, more than the 5 that --kubernetesMaxDisruptions allows/,
        ];
    expect({ mode, stderr: r.stderr }).toMatchObject({ stderr: expect.stringMatching(fifth) });
    expect({ mode, stderr: r.stderr }).toMatchObject({ stderr: expect.stringMatching(tooMany) });
    if (onExecutors) expect(r.stderr).not.toMatch(/it will run again/);
    expect(evicted.size).toBeGreaterThanOrEqual(6);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);
});

/**
 * A kubeconfig for a service account bound to the leader's Role from manifests/install (what a
 * leader in the cluster may do), so that the test also shows the Role allows what it does.
 */
let roleKubeconfig: Promise<string> | undefined;
function leaderRoleKubeconfig(): Promise<string> {
  return (roleKubeconfig ??= makeLeaderRoleKubeconfig());
}

async function makeLeaderRoleKubeconfig(): Promise<string> {
  const admin = k.cluster.kubeconfigPath;
  for (const args of [
    ['create', 'serviceaccount', 'role-check'],
    ['apply', '-f', path.join(ROOT, 'manifests/install/role.yaml')],
    ['create', 'rolebinding', 'role-check', '--role=toil-leader', '--serviceaccount=default:role-check'],
  ]) {
    const r = await kubectl(admin, args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
  }
  return k.cluster.kubeconfigFor('default', 'role-check');
}

describe.each(MODES)('containers that cannot be created (%s)', (_mode, modeEnv) => {
  it('worker pods mounting a secret that does not exist fail after --kubernetesPodTimeout, naming the secret', async () => {
    // the leader runs with the manifests' Role: reading the pod's events must be allowed
    const kubeconfig = await leaderRoleKubeconfig();
    const r = await toilWithin(
      90_000,
      [
        'run',
        workflow('../../examples/helloworld.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--kubernetesPodTimeout',
        '3',
        '--retryCount',
        '2',
      ],
      { ...k.env, ...modeEnv, KUBECONFIG: kubeconfig, TOIL_AWS_SECRET_NAME: 'no-such-secret' },
    );
    expect(r.stopped ? `stopped after 90 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'hello' \(hello-[a-z0-9]+\): the worker pod's container could not be started for 3s \(--kubernetesPodTimeout\): ContainerCreating; the kubelet says: FailedMount: MountVolume.SetUp failed for volume "aws-credentials" : secret "no-such-secret" not found/,
    );
    expect(r.stderr).not.toMatch(/retrying/);
    expect(k.leftoverJobs()).toBe(0);
  }, 150_000);
});

describe.each(MODES)('image pulls (%s)', (_mode, modeEnv) => {
  const hello = (env: NodeJS.ProcessEnv, ...opts: string[]) =>
    toilWithin(90_000, ['run', workflow('../../examples/helloworld.ts'), k.locator(), '--batchSystem', 'kubernetes', ...opts], {
      ...env,
      ...modeEnv,
    });

  it('a transient ErrImagePull is not final: the job runs once a pull succeeds', async () => {
    k.cluster.faults.failImagePulls('toil-ts:test', 2);
    const r = await hello(k.env);
    expect(r.stopped ? `stopped after 90 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.stderr).not.toMatch(/cannot pull/);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('Hello, world');
    expect(k.leftoverJobs()).toBe(0);
  }, 150_000);

  it('a pull still failing after --kubernetesPodTimeout fails the job, naming the image', async () => {
    const image = 'registry.example/toil-ts:flaky';
    k.cluster.faults.failImagePulls(image, 1000);
    const started = Date.now();
    const r = await hello({ ...k.env, TOIL_APPLIANCE_SELF: image }, '--kubernetesPodTimeout', '6', '--retryCount', '2');
    expect(r.stopped ? `stopped after 90 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'hello' \(hello-[a-z0-9]+\): cannot pull the worker image 'registry.example\/toil-ts:flaky' for 6s \(--kubernetesPodTimeout\): (ErrImagePull|ImagePullBackOff) \(Failed to pull image "registry.example\/toil-ts:flaky": .*503 Service Unavailable\)/,
    );
    expect(r.stderr).not.toMatch(/retrying/);
    expect(Date.now() - started).toBeGreaterThan(6_000);
    expect(k.leftoverJobs()).toBe(0);
  }, 150_000);

  it('an invalid image name still fails fast, naming the image', async () => {
    const r = await hello({ ...k.env, TOIL_APPLIANCE_SELF: 'Registry.Example/Toil-TS:bad' }, '--retryCount', '2');
    expect(r.stopped ? `stopped after 90 s:\n${r.stderr}` : 'ended').toBe('ended');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /cannot pull the worker image 'Registry.Example\/Toil-TS:bad': InvalidImageName \(Failed to apply default image tag/,
    );
    expect(r.stderr).not.toMatch(/retrying/);
    expect(k.leftoverJobs()).toBe(0);
  }, 150_000);
});
