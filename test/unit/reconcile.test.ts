/** The reconciliation's rules (pure): lost ends, and jobs done in the store whose batch job stays silent. */
import { describe, expect, it } from '@jest/globals';
import { dueForReconcile, reconcileActions, type IssuedBatchJob } from '../../src/leader/reconcile.js';

describe('reconciling issued batch jobs', () => {
  const issued = (): Map<number, IssuedBatchJob> =>
    new Map([
      [1, { jobId: 'a', at: 0 }],
      [2, { jobId: 'b', at: 0 }],
      [3, { jobId: 'c', at: 50_000 }],
    ]);

  it('looks only at batch jobs issued a period ago or more', () => {
    expect(dueForReconcile(issued(), 60_000, 60_000).map(([id]) => id)).toEqual([1, 2]);
  });

  it('a batch job the batch system no longer knows had its end lost', () => {
    const due = dueForReconcile(issued(), 60_000, 60_000);
    const actions = reconcileActions(due, { now: 60_000, knows: (id) => id !== 2, done: [false, false] });
    expect(actions.map((a) => [a.kind, a.batchJobId])).toEqual([['lost', 2]]);
  });

  it('takes a job as done only at the second reconciliation in a row that finds it done; a sighting not confirmed is forgotten', () => {
    const all = issued();
    const knows = (): boolean => true;
    expect(reconcileActions(dueForReconcile(all, 60_000, 60_000), { now: 60_000, knows, done: [true, true] })).toEqual([]);
    // b is no longer done (its chain went on): forgotten; a is done again: taken
    const second = reconcileActions(dueForReconcile(all, 120_000, 60_000), { now: 120_000, knows, done: [true, false, false] });
    expect(second.map((a) => [a.kind, a.batchJobId])).toEqual([['takeAsDone', 1]]);
    expect(all.get(2)!.doneSeenAt).toBeUndefined();
  });
});
