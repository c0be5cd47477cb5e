import { describe, expect, it } from '@jest/globals';
import { EndQueue } from '../../src/batch/endQueue.js';
import type { BatchJobEnd } from '../../src/batch/types.js';

const end = (batchJobId: number): BatchJobEnd => ({
  batchJobId,
  jobId: `j${batchJobId}`,
  outcome: 'succeeded',
  exitCode: 0,
  countsAsAttempt: true,
});

describe('EndQueue', () => {
  it('keeps an end pushed after a wait was aborted for the next call', async () => {
    const q = new EndQueue();
    const ac = new AbortController();
    const waiting = q.next(5000, ac.signal);
    ac.abort();
    expect(await waiting).toBeUndefined();
    q.push(end(1));
    expect(await q.next(0)).toEqual(end(1));
  });

  it('keeps an end pushed after a wait timed out', async () => {
    const q = new EndQueue();
    expect(await q.next(10)).toBeUndefined();
    q.push(end(2));
    expect(q.length).toBe(1);
    expect(await q.next(0)).toEqual(end(2));
  });

  it('settles a wait with nothing when a newer one replaces it, and gives the end to the newer one', async () => {
    const q = new EndQueue();
    const older = q.next(5000);
    const newer = q.next(5000);
    expect(await older).toBeUndefined();
    q.push(end(3));
    expect(await newer).toEqual(end(3));
  });

  it('hands an end to the current wait at once, and does not wait when the signal is already aborted', async () => {
    const q = new EndQueue();
    const waiting = q.next(5000);
    q.push(end(4));
    expect(await waiting).toEqual(end(4));
    const ac = new AbortController();
    ac.abort();
    q.push(end(5));
    expect(await q.next(5000, ac.signal)).toEqual(end(5));
    expect(await q.next(5000, ac.signal)).toBeUndefined();
  });
});
