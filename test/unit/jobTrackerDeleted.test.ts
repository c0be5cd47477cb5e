/** A worker Job that goes without the leader deleting it: what the tracker makes of it (pure). */
import { describe, expect, it } from '@jest/globals';
import type { V1Job } from '@kubernetes/client-node';
import { FORGOTTEN_AFTER_MS, JobTracker } from '../../src/batch/jobTracker.js';
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
    expect(tracker.onJobList([], 500)).toEqual([]);
    tracker.onJob('ADDED', running, 1000);
    expect(tracker.onJobList([running], 2000)).toEqual([]);
    expect(tracker.onJobList([], 2000)).toEqual([expect.objectContaining({ kind: 'finish', job: t, deleteNow: true })]);
  });

  it('a list sent before the Job was first seen may lack it: that is no deletion', () => {
    const { tracker } = tracked();
    tracker.onJob('ADDED', running, 2000);
    expect(tracker.onJobList([], 1999)).toEqual([]);
  });

  it('a Job created long before a list that never showed it is gone: it runs again, using up a try, saying so', () => {
    const { tracker, t } = tracked();
    tracker.created(t, 1000);
    expect(tracker.onJobList([], 1000 + FORGOTTEN_AFTER_MS - 1)).toEqual([]);
    const [a] = tracker.onJobList([], 1000 + FORGOTTEN_AFTER_MS + 5000);
    expect(a).toEqual(
      expect.objectContaining({
        kind: 'finish',
        job: t,
        verdict: expect.objectContaining({ outcome: 'failed', countsAsAttempt: true, retryable: true }) as unknown,
      }),
    );
    expect(a?.kind === 'finish' && a.verdict.message).toBe(
      `worker Job ${NAME} was created 35s ago but the cluster does not have it (it went before this leader saw it run); running the job again`,
    );
  });
});
