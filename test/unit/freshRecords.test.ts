/** The new jobs' records a leader keeps for their first issue (src/leader/freshRecords.ts). */
import { describe, expect, it } from '@jest/globals';
import { FreshRecords } from '../../src/leader/freshRecords.js';
import { sampleRecord } from '../jobstore/conformance.js';

describe('fresh records', () => {
  it('hands a record out once, with its version', () => {
    const f = new FreshRecords();
    f.add(sampleRecord('a'), 'v1');
    expect(f.take('a')).toEqual({ value: sampleRecord('a'), version: 'v1' });
    expect(f.take('a')).toBeUndefined();
    expect(f.size).toEqual({ records: 0, bytes: 0 });
  });

  it('keeps no done record, none without a version, and none the leader is about to change', () => {
    const f = new FreshRecords();
    f.add(sampleRecord('done', { state: 'done' }), 'v1');
    f.add(sampleRecord('nover'), '');
    f.add(sampleRecord('changed'), 'v1');
    f.forget('changed');
    expect(f.take('done')).toBeUndefined();
    expect(f.take('nover')).toBeUndefined();
    expect(f.take('changed')).toBeUndefined();
  });

  it('keeps at most its bound, the oldest going first', () => {
    const one = JSON.stringify(sampleRecord('r0')).length;
    const f = new FreshRecords(one * 3);
    for (let i = 0; i < 5; i++) f.add(sampleRecord(`r${i}`), `v${i}`);
    expect(f.size).toEqual({ records: 3, bytes: one * 3 });
    expect(f.take('r0')).toBeUndefined();
    expect(f.take('r1')).toBeUndefined();
    expect(f.take('r4')?.version).toBe('v4');
    // a record bigger than the bound is not kept at all
    const small = new FreshRecords(10);
    small.add(sampleRecord('big'), 'v');
    expect(small.size.records).toBe(0);
  });
});
