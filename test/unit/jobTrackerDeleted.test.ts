/** A worker Job that goes without the leader deleting it: what the tracker makes of it (pure). */
import { describe, expect, it } from '@jest/globals';
import type { V1Job } from '@kubernetes/client-node';
import { JobTracker } from '../../src/batch/jobTracker.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const req: ResolvedRequirements = { cores: 1, memory: 2 ** 30, disk: 2 ** 30, accelerators: [], preemptible: false };
const NAME = 'toil-demo-abc-7';
const running: V1Job = { metadata: { name: NAME }, status: { active: 1 } };

function tracked() {
  const tracker = new JobTracker();
  const t = tracker.add({ batchJobId: 7, batchLabel: 'k3x9a2-7', name: NAME, jobId: 'quiet-1', jobName: 'quiet', requirements: req });
  return { tracker, t };
}

describe('a worker Job deleted by someone else', () => {
  it('a DELETED event fails the job, counting a try, with a message naming the Job', () => {
    const { tracker, t } = tracked();
    expect(tracker.onJob('ADDED', running)).toEqual([]);
    const [a] = tracker.onJob('DELETED', running);
    expect(a).toEqual({
      kind: 'finish',
      job: t,
      deleteNow: true,
      verdict: expect.objectContaining({ outcome: 'failed', countsAsAttempt: true, retryable: true }) as unknown,
    });
    expect(a?.kind === 'finish' && a.verdict.message).toBe(
      `worker Job ${NAME} was deleted by someone else (not by this leader) before it finished`,
    );
  });

  it('a deleted Job that had finished is read by its conditions', () => {
    const { tracker } = tracked();
    const done: V1Job = { metadata: { name: NAME }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    const [a] = tracker.onJob('DELETED', done);
    expect(a?.kind === 'finish' && a.verdict.outcome).toBe('succeeded');
  });

  it("the leader's own deletion (the job is being finished or killed) is not reported again", () => {
    const { tracker, t } = tracked();
    tracker.onJob('ADDED', running);
    expect(tracker.claim(t)).toBe(true);
    expect(tracker.onJob('DELETED', running)).toEqual([]);
  });

  it('a re-list without a Job seen before means it was deleted while the watch was down; one not yet seen is left alone', () => {
    const { tracker, t } = tracked();
    expect(tracker.onJobList([])).toEqual([]);
    tracker.onJob('ADDED', running);
    expect(tracker.onJobList([running])).toEqual([]);
    expect(tracker.onJobList([])).toEqual([expect.objectContaining({ kind: 'finish', job: t, deleteNow: true })]);
  });
});
