/** How a restart names the pods of an earlier leader it waits for. */
import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import { describePod, describePods } from '../../src/batch/leftovers.js';

function pod(name: string, extra: { phase?: string; node?: string; deleting?: boolean; finalizers?: string[] } = {}): V1Pod {
  return {
    metadata: {
      name,
      ...(extra.deleting ? { deletionTimestamp: new Date('2026-11-29T12:00:00Z') } : {}),
      ...(extra.finalizers ? { finalizers: extra.finalizers } : {}),
    },
    ...(extra.node ? { spec: { containers: [], nodeName: extra.node } } : {}),
    ...(extra.phase ? { status: { phase: extra.phase } } : {}),
  };
}

describe('the pods of an earlier leader, for people', () => {
  it('names a pod with its phase, node, deletion and what holds it', () => {
    expect(describePod(pod('a'))).toBe('a (Pending)');
    expect(describePod(pod('b', { phase: 'Running', node: 'node-1', deleting: true }))).toBe('b (Running, on node-1, being deleted)');
    expect(describePod(pod('c', { phase: 'Failed', node: 'node-2', deleting: true, finalizers: ['example.com/hold'] }))).toBe(
      'c (Failed, on node-2, being deleted, held by finalizer example.com/hold)',
    );
  });

  it('names the first five and counts the rest', () => {
    const pods = Array.from({ length: 7 }, (_, i) => pod(`p${i}`, { phase: 'Running' }));
    expect(describePods(pods)).toBe('p0 (Running); p1 (Running); p2 (Running); p3 (Running); p4 (Running); and 2 more');
    expect(describePods(pods.slice(0, 2))).toBe('p0 (Running); p1 (Running)');
  });
});
