/** What the tracker says about batch jobs that are not running, and when it doubts its watch (pure). */
import { describe, expect, it } from '@jest/globals';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { FORGOTTEN_AFTER_MS, JobTracker } from '../../src/batch/jobTracker.js';
import { LABEL_BATCH_ID } from '../../src/batch/kubernetesSpec.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const req: ResolvedRequirements = { cores: 1, memory: 2 ** 30, disk: 2 ** 30, accelerators: [], preemptible: false };

function tracker(n: number) {
  const tr = new JobTracker();
  const ts = Array.from({ length: n }, (_, i) =>
    tr.add({
      batchJobId: i + 1,
      batchLabel: `abc123-${i + 1}`,
      name: `toil-w-${i + 1}`,
      jobId: `j${i + 1}`,
      jobName: 'count',
      requirements: req,
    }),
  );
  return { tr, ts };
}

function pod(i: number, status: V1Pod['status'], extra: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name: `toil-w-${i}-x`, labels: { [LABEL_BATCH_ID]: `abc123-${i}` }, creationTimestamp: new Date(1000) as unknown as Date },
    spec: { containers: [], ...extra },
    status,
  };
}

const job = (i: number): V1Job => ({ metadata: { name: `toil-w-${i}` }, status: { active: 1 } });

describe('what waiting batch jobs wait for', () => {
  it('groups them by reason, the largest group first, with what the cluster says', () => {
    const { tr, ts } = tracker(4);
    tr.onJob('ADDED', job(1));
    tr.onJob('ADDED', job(2));
    tr.onJob('ADDED', job(3));
    const unschedulable = {
      phase: 'Pending',
      conditions: [
        { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available: 1 Insufficient cpu.' },
      ],
    };
    tr.onPod('ADDED', pod(1, unschedulable));
    tr.onPod('ADDED', pod(2, unschedulable));
    tr.onPod('ADDED', pod(3, { phase: 'Running' }));
    expect(ts[3]!.seenAt).toBeUndefined();
    expect(tr.waitingFor()).toBe('2 waiting for a node (0/1 nodes are available: 1 Insufficient cpu.); 1 being created');
  });

  it('says nothing when every batch job runs', () => {
    const { tr } = tracker(1);
    tr.onJob('ADDED', job(1));
    tr.onPod('ADDED', pod(1, { phase: 'Running' }));
    expect(tr.waitingFor()).toBeUndefined();
  });
});

describe('when the tracker doubts its watch', () => {
  it('not while Jobs run and are seen; yes once a created Job has not been seen for a while', () => {
    const { tr, ts } = tracker(2);
    tr.created(ts[0]!, 1000);
    tr.onJob('ADDED', job(1), 1500);
    tr.created(ts[1]!, 2000);
    expect(tr.needsResync(2000 + FORGOTTEN_AFTER_MS - 1)).toBe(false);
    expect(tr.needsResync(2000 + FORGOTTEN_AFTER_MS)).toBe(true);
  });

  it('yes once a pod has ended for a while and its Job has not', () => {
    const { tr } = tracker(1);
    tr.onJob('ADDED', job(1), 1000);
    tr.onPod('ADDED', pod(1, { phase: 'Succeeded' }), 5000);
    expect(tr.needsResync(5000 + FORGOTTEN_AFTER_MS - 1)).toBe(false);
    expect(tr.needsResync(5000 + FORGOTTEN_AFTER_MS)).toBe(true);
  });
});
