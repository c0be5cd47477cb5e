/** What an executor's end means for its jobs and for the jobs waiting for its shape (src/batch/executors/executorEnds.ts). */
import { describe, expect, it } from '@jest/globals';
import { ExecutorEnds, type InnerEnd } from '../../src/batch/executors/executorEnds.js';

const takenAway: InnerEnd = {
  outcome: 'preempted',
  exitCode: null,
  message: 'the pod was taken away (TerminationByKubelet: spot instance reclaimed)',
  countsAsAttempt: false,
};
const badImage: InnerEnd = {
  outcome: 'image',
  exitCode: null,
  message: "cannot pull the worker image 'x:y' for 6s (--kubernetesPodTimeout)",
  countsAsAttempt: true,
  final: true,
};
const held = { executor: 'ab12x3', neverRan: false };

describe('jobs an executor held', () => {
  it('are lost with it, not charged a try, until the bound; then fail for good', () => {
    const ends = new ExecutorEnds(2);
    const first = ends.forHeldJob('j1', { ...takenAway, place: { node: 'n1' } as InnerEnd['place'] }, held);
    expect(first).toMatchObject({
      outcome: 'preempted',
      countsAsAttempt: false,
      message: expect.stringMatching(/^its executor ab12x3 ended \(preempted: the pod was taken away/),
    });
    expect(first.place).toBeDefined();
    expect(ends.forHeldJob('j1', takenAway, held).countsAsAttempt).toBe(false);
    // another job has its own count
    expect(ends.forHeldJob('j2', takenAway, held).countsAsAttempt).toBe(false);
    expect(ends.forHeldJob('j1', takenAway, held)).toEqual({
      outcome: 'preempted',
      exitCode: null,
      message: expect.stringMatching(
        /^it lost its executor 3 times, more than the 2 that --kubernetesMaxDisruptions allows \(the last time: its executor ab12x3 ended .*\); the job is not run again$/,
      ),
      countsAsAttempt: true,
      final: true,
    });
  });

  it('an executor that crashed or exited is a loss too; one that never ran passes its verdict as it is', () => {
    const ends = new ExecutorEnds(5);
    expect(ends.forHeldJob('j', { outcome: 'failed', exitCode: 137, countsAsAttempt: true }, held)).toMatchObject({
      outcome: 'preempted',
      countsAsAttempt: false,
    });
    expect(ends.forHeldJob('j', badImage, held)).toEqual(badImage);
    const refused: InnerEnd = {
      outcome: 'failed',
      exitCode: null,
      message: 'its executor could not be started: no',
      countsAsAttempt: true,
    };
    expect(ends.forHeldJob('j', refused, { ...held, neverRan: true })).toEqual(refused);
  });
});

describe('jobs waiting for the shape of an executor that ended before it started', () => {
  it('end with its verdict as it is, a final one staying final, naming the executor', () => {
    const ends = new ExecutorEnds(5);
    expect(ends.forWaitingJobs('1c', badImage, 'ab12x1')).toEqual({
      ...badImage,
      place: undefined,
      message: `${badImage.message}; its executor ab12x1 never started`,
    });
    const crashed: InnerEnd = { outcome: 'failed', exitCode: 1, message: 'the worker exited with code 1', countsAsAttempt: true };
    expect(ends.forWaitingJobs('1c', crashed, 'ab12x2')).toMatchObject({
      outcome: 'failed',
      countsAsAttempt: true,
      message: 'the worker exited with code 1; its executor ab12x2 never started',
    });
  });

  it('go on waiting when the leader killed it or it exited 0', () => {
    const ends = new ExecutorEnds(5);
    expect(ends.forWaitingJobs('1c', { outcome: 'killed', exitCode: null, countsAsAttempt: false }, 'x')).toBeUndefined();
    expect(ends.forWaitingJobs('1c', { outcome: 'succeeded', exitCode: 0, countsAsAttempt: true }, 'x')).toBeUndefined();
  });

  it('go on waiting through disruptions up to the bound, counted per shape in a row; then fail for good', () => {
    const ends = new ExecutorEnds(2);
    expect(ends.forWaitingJobs('1c', takenAway, 'x1')).toBeUndefined();
    expect(ends.forWaitingJobs('1c', takenAway, 'x2')).toBeUndefined();
    // another shape counts on its own
    expect(ends.forWaitingJobs('2c', takenAway, 'x3')).toBeUndefined();
    expect(ends.startLossesOf('1c')).toBe(2);
    expect(ends.forWaitingJobs('1c', takenAway, 'x4')).toMatchObject({
      outcome: 'preempted',
      countsAsAttempt: true,
      final: true,
      message: expect.stringMatching(
        /^its executor pods were taken away 3 times in a row before one started, more than the 2 that --kubernetesMaxDisruptions allows \(the last time: preempted: the pod was taken away/,
      ),
    });
  });

  it('an executor of the shape that starts begins the count again', () => {
    const ends = new ExecutorEnds(2);
    ends.forWaitingJobs('1c', takenAway, 'x1');
    ends.forWaitingJobs('1c', takenAway, 'x2');
    ends.started('1c');
    expect(ends.startLossesOf('1c')).toBe(0);
    expect(ends.forWaitingJobs('1c', takenAway, 'x3')).toBeUndefined();
  });
});
