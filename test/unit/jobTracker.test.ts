/** Per-job tracking of the kubernetes batch system: what Job and pod events mean (pure). */
import { describe, expect, it } from '@jest/globals';
import type { V1Job, V1Pod, V1PodStatus } from '@kubernetes/client-node';
import { JobTracker, describeRequest } from '../../src/batch/jobTracker.js';
import { LABEL_BATCH_ID } from '../../src/batch/kubernetesSpec.js';
import { watchRetryDelay } from '../../src/batch/listWatch.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const req: ResolvedRequirements = { cores: 2, memory: 2 * 2 ** 30, disk: 2 ** 30, accelerators: [], preemptible: false };

function tracked() {
  const tracker = new JobTracker();
  const t = tracker.add({
    batchJobId: 7,
    batchLabel: 'k3x9a2-7',
    name: 'toil-demo-abc-k3x9a2-7',
    jobId: 'hello-1',
    jobName: 'hello',
    requirements: req,
  });
  return { tracker, t };
}

function pod(name: string, status: V1PodStatus, created = '2026-01-01T00:00:00Z', nodeName?: string): V1Pod {
  return {
    metadata: { name, labels: { [LABEL_BATCH_ID]: 'k3x9a2-7' }, creationTimestamp: created as unknown as Date },
    spec: { containers: [{ name: 'worker' }], ...(nodeName ? { nodeName } : {}) },
    status,
  };
}

function terminated(exitCode: number, reason = 'Error'): V1PodStatus {
  return {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    containerStatuses: [
      { name: 'worker', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode, reason } } },
    ],
  };
}

const failedJob: V1Job = {
  metadata: { name: 'toil-demo-abc-k3x9a2-7' },
  status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }] },
};

describe('JobTracker', () => {
  it('finishes a job when its Job fails, and the ended pod explains why', () => {
    const { tracker, t } = tracked();
    expect(tracker.onPod('MODIFIED', pod('p1', terminated(3), undefined, 'node-1'))).toEqual([]);
    const [a] = tracker.onJob('MODIFIED', failedJob);
    expect(a).toMatchObject({ kind: 'finish', job: t, deleteNow: false, verdict: { outcome: 'failed' } });
    if (a?.kind !== 'finish') throw new Error('no finish');
    expect(tracker.claim(t)).toBe(true);
    expect(tracker.claim(t)).toBe(false);
    const v = tracker.settle(t, a.verdict, a.deleteNow);
    expect(v).toMatchObject({ outcome: 'failed', exitCode: 3, message: 'the worker exited with code 3' });
    expect(tracker.end(t, v, 'last words')).toEqual({
      batchJobId: 7,
      jobId: 'hello-1',
      outcome: 'failed',
      exitCode: 3,
      message: v.message,
      countsAsAttempt: true,
      // exit code 3: the worker did not save this attempt's log, the pod's tail is all of it
      outputTail: 'last words',
      outputIsLog: true,
      // for statistics: where its pod ran, and the phases its status gives
      place: { node: 'node-1', pod: 'p1', phases: { created: Date.parse('2026-01-01T00:00:00Z') } },
    });
    expect(tracker.end(t, v)).toBeUndefined();
    expect(tracker.size).toBe(0);
  });

  it('a Job seen failed before its pod: the pod read afterwards explains why (OOM), the newest pod wins', () => {
    const { tracker, t } = tracked();
    tracker.onPod('ADDED', pod('p2', { phase: 'Running' }, '2026-01-01T00:01:00Z', 'node-1'));
    const [a] = tracker.onJob('MODIFIED', failedJob);
    if (a?.kind !== 'finish') throw new Error('no finish');
    expect(tracker.podEnded(t)).toBe(false);
    tracker.notePods(t, [
      pod('p1', terminated(1), '2026-01-01T00:00:00Z'),
      pod('p2', terminated(137, 'OOMKilled'), '2026-01-01T00:01:00Z'),
    ]);
    expect(tracker.podEnded(t)).toBe(true);
    expect(tracker.settle(t, a.verdict, a.deleteNow)).toMatchObject({ outcome: 'memory', exitCode: 137 });
  });

  it("says how the job ended its process, from the worker's last line, once the pod's exit code is known", () => {
    const { tracker, t } = tracked();
    tracker.onPod('MODIFIED', pod('p1', terminated(3), undefined, 'node-1'));
    const tail = "samtools: input file is truncated\ntoil worker: job 'hello' (hello-1) called process.exit(3)";
    const end = tracker.end(
      t,
      tracker.settle(t, { outcome: 'failed', exitCode: null, message: 'x', countsAsAttempt: true, retryable: true }, false),
      tail,
    );
    expect(end).toMatchObject({ exitCode: 3, message: 'the job called process.exit(3)', outputTail: tail, outputIsLog: true });
  });

  it('ignores events of Jobs and pods it does not track, and pod deletions', () => {
    const { tracker } = tracked();
    expect(tracker.onJob('MODIFIED', { ...failedJob, metadata: { name: 'someone-else' } })).toEqual([]);
    expect(tracker.onPod('DELETED', pod('p1', terminated(1)))).toEqual([]);
    const stranger = pod('p9', terminated(1));
    stranger.metadata!.labels = { [LABEL_BATCH_ID]: 'k3x9a2-8' };
    expect(tracker.onPod('MODIFIED', stranger)).toEqual([]);
    // an earlier leader's pod with the same counter
    const earlier = pod('p0', terminated(1));
    earlier.metadata!.labels = { [LABEL_BATCH_ID]: '7' };
    expect(tracker.onPod('MODIFIED', earlier)).toEqual([]);
    expect(tracker.get(7)?.pod).toBeUndefined();
  });

  it("keeps the newest pod: a replaced pod's late events change nothing", () => {
    const { tracker, t } = tracked();
    tracker.onPod('ADDED', pod('new', { phase: 'Running' }, '2026-01-01T00:01:00Z'));
    tracker.onPod('MODIFIED', pod('old', terminated(1), '2026-01-01T00:00:00Z'));
    expect(t.pod?.metadata?.name).toBe('new');
    expect(tracker.running()).toBe(1);
  });

  it('warns once when the pod is taken away', () => {
    const { tracker } = tracked();
    tracker.onPod('MODIFIED', pod('p1', { phase: 'Running' }));
    const taken: V1PodStatus = {
      ...terminated(137),
      conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: 'spot reclaimed' }],
    };
    const actions = tracker.onPod('MODIFIED', pod('p1', taken));
    expect(actions).toEqual([
      {
        kind: 'warn',
        message: expect.stringMatching(/worker pod p1 of job 'hello' \(hello-1\) was taken away \(TerminationByKubelet: spot reclaimed\)/),
      },
    ]);
    expect(tracker.onPod('MODIFIED', pod('p1', taken))).toEqual([]);
  });

  it('fails fast, for good, on an image that is not there; a transient pull error waits for the pod timeout', () => {
    const { tracker } = tracked();
    const waiting = (reason: string, message: string): V1PodStatus => ({
      phase: 'Pending',
      startTime: '2026-01-01T00:00:00Z' as unknown as Date,
      containerStatuses: [
        { name: 'worker', image: 'nope:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } },
      ],
    });
    const unavailable = 'Failed to pull image "nope:1": 503 Service Unavailable';
    expect(tracker.onPod('MODIFIED', pod('p1', waiting('ErrImagePull', unavailable), undefined, 'node-1'))).toEqual([]);
    expect(
      tracker.onPod('MODIFIED', pod('p1', waiting('ImagePullBackOff', 'Back-off pulling image "nope:1"'), undefined, 'node-1')),
    ).toEqual([]);
    const since = Date.parse('2026-01-01T00:00:00Z');
    expect(tracker.stuck(since + 599_000, 600)).toEqual([]);
    const [a] = tracker.stuck(since + 600_000, 600);
    expect(a).toMatchObject({
      kind: 'finish',
      deleteNow: true,
      verdict: {
        outcome: 'image',
        retryable: false,
        message: `cannot pull the worker image 'nope:1' for 600s (--kubernetesPodTimeout): ImagePullBackOff (${unavailable})`,
      },
    });
    const other = tracked();
    const notFound = 'Failed to pull image "nope:1": failed to resolve reference "nope:1": not found';
    const [b] = other.tracker.onPod('MODIFIED', pod('p1', waiting('ErrImagePull', notFound), undefined, 'node-1'));
    expect(b).toMatchObject({ kind: 'finish', deleteNow: true, verdict: { outcome: 'image', retryable: false } });
  });

  it('a pull that succeeds after failing is forgotten', () => {
    const { tracker } = tracked();
    const since = Date.parse('2026-01-01T00:00:00Z');
    const status: V1PodStatus = {
      phase: 'Pending',
      startTime: '2026-01-01T00:00:00Z' as unknown as Date,
      containerStatuses: [
        {
          name: 'worker',
          image: 'i:1',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ErrImagePull', message: '503' } },
        },
      ],
    };
    tracker.onPod('MODIFIED', pod('p1', status, undefined, 'node-1'));
    tracker.onPod('MODIFIED', pod('p1', { phase: 'Running' }, undefined, 'node-1'));
    expect(tracker.stuck(since + 3_600_000, 600)).toEqual([]);
  });

  it("fails a pod unschedulable past the timeout, naming the request and the scheduler's reason", () => {
    const { tracker } = tracked();
    const since = Date.parse('2026-01-01T00:00:00Z');
    const pending: V1PodStatus = {
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/2 nodes: Insufficient cpu',
          lastTransitionTime: '2026-01-01T00:00:00Z' as unknown as Date,
        },
      ],
    };
    tracker.onPod('MODIFIED', pod('p1', pending));
    expect(tracker.stuck(since + 9_000, 10)).toEqual([]);
    const [a] = tracker.stuck(since + 10_000, 10);
    expect(a).toMatchObject({ kind: 'finish', deleteNow: true, verdict: { outcome: 'unschedulable', retryable: false } });
    if (a?.kind !== 'finish') throw new Error('no finish');
    expect(a.verdict.message).toBe(
      `no node could take the worker pod for 10s (--kubernetesPodTimeout); it asks for ${describeRequest(req)}; the scheduler says: 0/2 nodes: Insufficient cpu`,
    );
    tracker.onPod('MODIFIED', pod('p1', { phase: 'Running' }, undefined, 'node-1'));
    expect(tracker.stuck(since + 20_000, 10)).toEqual([]);
  });

  it("a verdict that must stand is not replaced by the pod's reading", () => {
    const { tracker, t } = tracked();
    tracker.onPod('MODIFIED', pod('p1', terminated(0), undefined, 'node-1'));
    const verdict = { outcome: 'image' as const, exitCode: null, message: 'x', countsAsAttempt: true, retryable: false };
    expect(tracker.settle(t, verdict, true)).toBe(verdict);
    expect(tracker.settle(t, verdict, false).outcome).toBe('succeeded');
  });
});

describe('watch retry delay', () => {
  it('grows exponentially with jitter and stays under 10 s', () => {
    expect(watchRetryDelay(1, () => 1)).toBe(400);
    expect(watchRetryDelay(1, () => 0)).toBe(200);
    expect(watchRetryDelay(3, () => 1)).toBe(1600);
    expect(watchRetryDelay(20, () => 1)).toBe(10_000);
  });
});

describe('a container that is not created', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  function waiting(reason: string, message?: string): V1PodStatus {
    return {
      phase: 'Pending',
      startTime: '2026-01-01T00:00:00Z' as unknown as Date,
      containerStatuses: [
        {
          name: 'worker',
          image: 'i',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason, ...(message ? { message } : {}) } },
        },
      ],
    };
  }
  const failedMount = {
    metadata: {},
    involvedObject: {},
    type: 'Warning',
    reason: 'FailedMount',
    message: 'MountVolume.SetUp failed for volume "aws-credentials" : secret "s3" not found',
    lastTimestamp: '2026-01-01T00:09:00Z' as unknown as Date,
  };

  it('reads the events once the pod timeout is up, and fails for good with the kubelet warning', () => {
    const { tracker, t } = tracked();
    tracker.onPod('MODIFIED', pod('p1', waiting('ContainerCreating'), undefined, 'node-1'));
    expect(tracker.stuck(Date.parse('2026-01-01T00:00:30Z'), 600)).toEqual([]);
    const [inspect] = tracker.stuck(now, 600);
    expect(inspect).toMatchObject({ kind: 'inspect', job: t });
    expect(tracker.stuck(now + 1000, 600)).toEqual([]);
    const timedOut = {
      ...failedMount,
      message:
        'Unable to attach or mount volumes: unmounted volumes=[aws-credentials], unattached volumes=[aws-credentials]: timed out waiting for the condition',
      lastTimestamp: '2026-01-01T00:09:30Z' as unknown as Date,
    };
    const [finish] = tracker.inspected(t, [timedOut, failedMount], { now, podTimeoutSeconds: 600 });
    expect(finish).toMatchObject({
      kind: 'finish',
      deleteNow: true,
      verdict: {
        countsAsAttempt: true,
        retryable: false,
        message: `the worker pod's container could not be started for 600s (--kubernetesPodTimeout): ContainerCreating; the kubelet says: FailedMount: ${failedMount.message}`,
      },
    });
  });

  it('a container being created with no warning (a slow image pull) waits longer', () => {
    const { tracker, t } = tracked();
    tracker.onPod('MODIFIED', pod('p1', waiting('ContainerCreating'), undefined, 'node-1'));
    expect(tracker.stuck(now, 600)).toHaveLength(1);
    expect(tracker.inspected(t, [], { now, podTimeoutSeconds: 600 })).toEqual([]);
    expect(tracker.stuck(now + 60_000, 600)).toEqual([]);
    expect(tracker.stuck(now + 600_000, 600)).toHaveLength(1);
  });

  it('a container being created whose events cannot be read fails with what the status says', () => {
    const { tracker, t } = tracked();
    tracker.onPod('MODIFIED', pod('p1', waiting('ContainerCreating'), undefined, 'node-1'));
    expect(tracker.stuck(now, 600)).toHaveLength(1);
    const [finish] = tracker.inspected(t, { error: 'events is forbidden' }, { now, podTimeoutSeconds: 600 });
    expect(finish).toMatchObject({
      kind: 'finish',
      verdict: {
        message: expect.stringContaining('ContainerCreating; the kubelet says: (its events cannot be read: events is forbidden)'),
      },
    });
  });

  it('CreateContainerConfigError fails with the status message, naming the key', () => {
    const { tracker, t } = tracked();
    const msg = "couldn't find key password in Secret default/db";
    tracker.onPod('MODIFIED', pod('p1', waiting('CreateContainerConfigError', msg), undefined, 'node-1'));
    expect(tracker.stuck(now, 600)).toHaveLength(1);
    const [finish] = tracker.inspected(t, [], { now, podTimeoutSeconds: 600 });
    expect(finish).toMatchObject({
      kind: 'finish',
      verdict: { message: expect.stringContaining(`CreateContainerConfigError; the kubelet says: ${msg}`) },
    });
  });

  it('a container that starts in time is not inspected', () => {
    const { tracker } = tracked();
    tracker.onPod('MODIFIED', pod('p1', waiting('ContainerCreating'), undefined, 'node-1'));
    tracker.onPod('MODIFIED', pod('p1', { phase: 'Running' }, undefined, 'node-1'));
    expect(tracker.stuck(now, 600)).toEqual([]);
  });
});
