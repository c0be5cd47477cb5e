/** The leader's graph logic, on hand-made records. */
import { describe, expect, it } from '@jest/globals';
import type { JobRecord } from '../../src/job/types.js';
import { GraphState } from '../../src/leader/graphState.js';
import { sampleRecord } from '../jobstore/conformance.js';

function rec(id: string, extra: Partial<JobRecord> = {}): JobRecord {
  const r = sampleRecord(id, extra);
  return { ...r, staticChildren: r.children.length, staticFollowOns: r.followOns.length };
}

function done(r: JobRecord, extra: Partial<JobRecord> = {}): JobRecord {
  return { ...r, state: 'done', result: null, ...extra };
}

describe('GraphState', () => {
  it('makes children ready after the parent, follow-ons after the subtree', () => {
    const g = new GraphState(2);
    const root = rec('root', { children: ['a', 'b'], followOns: ['f'] });
    const a = rec('a', { predecessors: ['root'] });
    const b = rec('b', { predecessors: ['root'] });
    const f = rec('f', { predecessors: ['root'] });
    for (const r of [root, a, b, f]) g.add(r);
    g.recompute();
    expect([...g.ready]).toEqual(['root']);
    g.markIssued('root');
    g.markDone(done(root));
    expect([...g.ready].sort()).toEqual(['a', 'b']);
    g.markIssued('a');
    // a adds a dynamic child a1: f must also wait for it.
    const a1 = rec('a1', { predecessors: ['a'] });
    g.add(a1);
    g.markDone(done(a, { children: ['a1'] }));
    g.markIssued('b');
    g.markDone(done(b));
    expect(g.ready.has('f')).toBe(false);
    expect(g.ready.has('a1')).toBe(true);
    g.markIssued('a1');
    g.markDone(done(a1));
    expect(g.ready.has('f')).toBe(true);
    g.markIssued('f');
    g.markDone(done(f));
    expect(g.node('root')!.subtreeDone).toBe(true);
  });

  it('waits for forwarded values', () => {
    const g = new GraphState(2);
    const root = rec('root', { children: ['x', 'c'] });
    const x = rec('x', { predecessors: ['root'] });
    const c = rec('c', { predecessors: ['root'], promiseDeps: ['x'] });
    for (const r of [root, x, c]) g.add(r);
    g.recompute();
    g.markDone(done(root));
    g.markIssued('x');
    g.markIssued('c');
    // Pretend c was not issued: consumer readiness is what matters.
    g.markRetrying('c');
    g.endWait('c');
    expect(g.ready.has('c')).toBe(false);
    // x forwards its value to its new child y.
    const y = rec('y', { predecessors: ['x'] });
    g.add(y);
    g.markDone(done(x, { children: ['y'], forwards: ['y'] }));
    expect(g.ready.has('c')).toBe(false);
    g.markIssued('y');
    g.markDone(done(y));
    expect(g.ready.has('c')).toBe(true);
  });

  it('never readies what depends on a failed job, and finds the checkpoint above it', () => {
    const g = new GraphState(2);
    const cp = rec('cp', { children: ['b'], checkpoint: true });
    const b = rec('b', { predecessors: ['cp'], children: ['d'] });
    const d = rec('d', { predecessors: ['b'] });
    for (const r of [cp, b, d]) g.add(r);
    g.recompute();
    g.markDone(done(cp));
    g.markIssued('b');
    g.markFailed('b');
    expect(g.ready.size).toBe(0);
    expect(g.checkpointAbove('b')).toBe('cp');
    expect([...g.subtreeOf('cp')].sort()).toEqual(['b', 'd']);
  });

  it('recomputes finished subtrees from stored states (restart)', () => {
    const g = new GraphState(2);
    g.add(done(rec('root', { children: ['a'], followOns: ['f'] })));
    g.add(done(rec('a', { predecessors: ['root'] })));
    g.add(rec('f', { predecessors: ['root'] }));
    g.recompute();
    expect([...g.ready]).toEqual(['f']);
    expect(g.node('a')!.subtreeDone).toBe(true);
    expect(g.node('root')!.subtreeDone).toBe(false);
  });

  it('counts jobs by status, and a job removed and added again keeps the edges from its parents', () => {
    const g = new GraphState(3);
    const root = rec('root', { children: ['a'], followOns: ['f'] });
    const a = rec('a', { predecessors: ['root'] });
    const f = rec('f', { predecessors: ['root'], promiseDeps: ['a'] });
    for (const r of [root, a, f]) g.add(r);
    g.recompute();
    g.markIssued('root');
    g.markDone(done(root));
    g.markIssued('a');
    expect(g.counts()).toEqual({ done: 1, issued: 1, pending: 1, failed: 0, total: 3 });
    g.remove('a');
    expect(g.counts()).toEqual({ done: 1, issued: 0, pending: 1, failed: 0, total: 2 });
    expect(g.has('a')).toBe(false);
    g.add({ ...a, remainingTries: 1 });
    g.recompute();
    expect(g.node('a')).toMatchObject({ status: 'pending', remainingTries: 1, name: 'sample' });
    expect([...g.ready]).toEqual(['a']);
    expect(g.predecessorsOf('a')).toEqual(['root']);
    g.markIssued('a');
    g.markDone(done(a));
    expect([...g.ready]).toEqual(['f']);
    g.markIssued('f');
    g.markDone(done(f));
    expect(g.node('root')!.subtreeDone).toBe(true);
    expect(g.counts()).toEqual({ done: 3, issued: 0, pending: 0, failed: 0, total: 3 });
  });
});
