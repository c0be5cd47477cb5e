/**
 * The event recorder as client-go's: an identical event raises the first one's count; after 10
 * different messages of one type and reason about one object, they are combined into
 * `(combined from similar events): <latest>`, whose count grows.
 */
import { describe, expect, test } from '@jest/globals';
import { Recorder, type EventSpec } from '../src/cluster/events.js';
import { Store, type Obj } from '../src/cluster/store.js';

const job: Obj = { kind: 'Job', apiVersion: 'batch/v1', metadata: { name: 'three', namespace: 'quota', uid: 'u-1' } };
const refused = (n: number): EventSpec => ({
  type: 'Warning',
  reason: 'FailedCreate',
  message: `Error creating: pods "three-${n}" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2`,
  component: 'job-controller',
});

describe('the event recorder', () => {
  test('identical events: one Event, its count raised', () => {
    const store = new Store(100);
    const rec = new Recorder(store, () => {});
    for (let i = 0; i < 3; i++) rec.record(job, refused(0));
    const events = store.list('events', 'quota');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ count: 3, reason: 'FailedCreate', involvedObject: { kind: 'Job', name: 'three', uid: 'u-1' } });
  });

  test('the 10th different message of a kind is combined with what follows', () => {
    const store = new Store(100);
    const rec = new Recorder(store, () => {});
    for (let i = 1; i <= 12; i++) rec.record(job, refused(i));
    const events = store.list('events', 'quota');
    expect(events).toHaveLength(10);
    const combined = events.filter((e) => String(e.message).startsWith('(combined from similar events): '));
    expect(combined).toHaveLength(1);
    expect(combined[0]).toMatchObject({ count: 3, message: `(combined from similar events): ${refused(12).message}` });
    // another reason about the same object is not combined with these
    rec.record(job, { ...refused(13), type: 'Normal', reason: 'SuccessfulCreate', message: 'Created pod: three-13' });
    expect(store.list('events', 'quota').find((e) => e.reason === 'SuccessfulCreate')).toMatchObject({
      count: 1,
      message: 'Created pod: three-13',
    });
  });
});
