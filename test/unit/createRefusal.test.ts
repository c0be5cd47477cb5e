/** When the cluster will not create a worker's pod: the API server's words, read (pure). */
import { describe, expect, it } from '@jest/globals';
import type { CoreV1Event, V1Job } from '@kubernetes/client-node';
import { readRefusal } from '../../src/batch/createRefusal.js';
import { JobTracker, NO_POD_GRACE_MS } from '../../src/batch/jobTracker.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const POD = 'pods "toil-demouser-30ddc435-k3x9a2-7-x8f2k" is forbidden';
const HOST_PATH = `${POD}: violates PodSecurity "baseline:latest": hostPath volumes (volume "toil-cache")`;
const QUOTA = `${POD}: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2`;
const QUOTA_NEEDS = `${POD}: failed quota: compute: must specify limits.cpu for: worker; requests.cpu for: worker`;
const LIMIT_RANGE = `${POD}: maximum memory usage per Container is 1Gi, but limit is 2Gi`;

describe('reading a refusal', () => {
  it('Pod Security is final, and for a host path says which level it needs and the other way out', () => {
    const r = readRefusal(`Error creating: ${HOST_PATH}`);
    expect(r).toMatchObject({ kind: 'pod-security', final: true, message: HOST_PATH });
    expect(r.advice).toMatch(/admitted only at the 'privileged' Pod Security level, and this namespace enforces 'baseline'/);
    expect(r.advice).toMatch(/or run without a host path/);
  });

  it('a full quota is waited out and named; a quota needing a request and a LimitRange bound are final', () => {
    expect(readRefusal(QUOTA)).toMatchObject({ kind: 'quota', final: false, quota: 'compute' });
    expect(readRefusal(QUOTA_NEEDS)).toMatchObject({ kind: 'quota-needs-request', final: true, quota: 'compute' });
    expect(readRefusal(LIMIT_RANGE)).toMatchObject({ kind: 'limit-range', final: true });
    expect(readRefusal('Internal error occurred: etcdserver: request timed out')).toMatchObject({ kind: 'other', final: false });
  });
});

const req: ResolvedRequirements = { cores: 1, memory: 2 ** 30, disk: 2 ** 30, accelerators: [], preemptible: false };
const NAME = 'toil-demouser-30ddc435-k3x9a2-7';
const job: V1Job = { metadata: { name: NAME }, status: {} };

function failedCreate(message: string, at: string, count = 1): CoreV1Event {
  return {
    metadata: { name: `${NAME}.1` },
    involvedObject: { kind: 'Job', name: NAME },
    reason: 'FailedCreate',
    type: 'Warning',
    message: `Error creating: ${message}`,
    firstTimestamp: new Date(at),
    lastTimestamp: new Date(at),
    count,
  };
}

function podless() {
  const tracker = new JobTracker();
  const t = tracker.add({ batchJobId: 7, batchLabel: 'k3x9a2-7', name: NAME, jobId: 'count-1', jobName: 'count', requirements: req });
  tracker.onJob('ADDED', job, 1000);
  return { tracker, t };
}

describe("a Job whose pod the cluster refuses (the Job controller's FailedCreate events)", () => {
  it('has its events read once it has had no pod for a while, with one request for all Jobs', () => {
    const { tracker } = podless();
    expect(tracker.stuck(1000 + NO_POD_GRACE_MS - 1, 300)).toEqual([]);
    expect(tracker.stuck(1000 + NO_POD_GRACE_MS, 300)).toEqual([{ kind: 'inspectCreates' }]);
    // being read: not asked again
    expect(tracker.stuck(1000 + NO_POD_GRACE_MS + 1, 300)).toEqual([]);
  });

  it('fails at once on Pod Security, saying what to change', () => {
    const { tracker, t } = podless();
    const [a] = tracker.createsInspected([failedCreate(HOST_PATH, '2026-12-05T10:00:00Z')], { now: 7000, podTimeoutSeconds: 300 });
    expect(a).toMatchObject({ kind: 'finish', job: t, verdict: { outcome: 'refused', countsAsAttempt: true, retryable: false } });
    expect(a?.kind === 'finish' && a.verdict.message).toMatch(
      /^the cluster refused to create the worker pod: pods ".*" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes \(volume "toil-cache"\); worker pods with a host path/,
    );
  });

  it('waits out a full quota, says so in the progress line, and fails after the pod timeout naming the quota', () => {
    const { tracker, t } = podless();
    const first = Date.parse('2026-12-05T10:00:00Z');
    expect(tracker.createsInspected([failedCreate(QUOTA, '2026-12-05T10:00:00Z')], { now: first + 1000, podTimeoutSeconds: 60 })).toEqual(
      [],
    );
    expect(tracker.waitingFor()).toBe(`1 waiting for quota (${QUOTA})`);
    const later = [failedCreate(QUOTA, '2026-12-05T10:00:50Z', 4)];
    expect(tracker.createsInspected(later, { now: first + 59_000, podTimeoutSeconds: 60 })).toEqual([]);
    const [a] = tracker.createsInspected(later, { now: first + 61_000, podTimeoutSeconds: 60 });
    expect(a).toMatchObject({ kind: 'finish', job: t, verdict: { outcome: 'refused', retryable: true } });
    expect(a?.kind === 'finish' && a.verdict.message).toBe(
      `no worker pod could be created for 60s (--kubernetesPodTimeout): the ResourceQuota 'compute' stayed full (${QUOTA})`,
    );
  });

  it('forgets the refusal once a pod exists', () => {
    const { tracker, t } = podless();
    tracker.createsInspected([failedCreate(QUOTA, '2026-12-05T10:00:00Z')], { now: 7000, podTimeoutSeconds: 300 });
    tracker.onPod('ADDED', {
      metadata: { name: `${NAME}-abc`, labels: { 'toil-ts.io/batch-id': 'k3x9a2-7' } },
      status: { phase: 'Pending' },
    });
    expect(t.refused).toBeUndefined();
  });
});
