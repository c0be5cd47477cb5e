/**
 * core/v1 Event recording as client-go's recorder does it: an event identical to an earlier one
 * (same object, source, type, reason and message) raises that one's `count`; and once an object
 * has had 10 different messages of the same type and reason from one source within 10 minutes
 * (a Job's `FailedCreate` naming a new pod each time), they are combined into one event,
 * `(combined from similar events): <latest message>`, whose count grows. (The recorder's spam
 * filter, 25 events per object then one per 5 minutes, is not modelled.)
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Store, Obj } from './store.js';
import { now } from './registry.js';

/** An event about an object: its type, reason and message, and the component (and host) reporting it. */
export interface EventSpec {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  component: string;
  host?: string;
}

/** Distinct messages of one (object, source, type, reason) before they are combined, and over how long. */
const MAX_SIMILAR = 10;
const SIMILAR_WINDOW_MS = 600_000;

export class Recorder {
  private seen = new Map<string, string>(); // key -> event name
  /** per (object, source, type, reason): its distinct messages and when the last came */
  private similar = new Map<string, { messages: Set<string>; last: number }>();
  constructor(
    private store: Store,
    private onChange: () => void,
  ) {}

  /** The event as the aggregator passes it on: itself, or the combined one once there are too many similar messages. */
  private aggregate(obj: Obj, event: EventSpec): { key: string; message: string } {
    const { type, reason, message, component, host } = event;
    const similarKey = `${String(obj.metadata?.uid)}|${String(obj.fieldPath ?? '')}|${component}|${host ?? ''}|${type}|${reason}`;
    const nowMs = Date.now();
    let rec = this.similar.get(similarKey);
    if (!rec || nowMs - rec.last > SIMILAR_WINDOW_MS) rec = { messages: new Set(), last: nowMs };
    rec.messages.add(message);
    rec.last = nowMs;
    this.similar.set(similarKey, rec);
    if (rec.messages.size < MAX_SIMILAR) return { key: `${similarKey}|${message}`, message };
    rec.messages.delete(rec.messages.values().next().value!);
    return { key: similarKey, message: `(combined from similar events): ${message}` };
  }

  record(obj: Obj, event: EventSpec): void {
    const { type, reason, component, host } = event;
    const { key: k, message } = this.aggregate(obj, event);
    const ns = (obj.metadata?.namespace as string | undefined) ?? 'default';
    const t = now();
    const existingName = this.seen.get(k);
    if (existingName) {
      const e = this.store.get('events', ns, existingName);
      if (e) {
        e.count = (e.count ?? 1) + 1;
        e.lastTimestamp = t;
        e.message = message;
        this.store.update('events', e);
        this.onChange();
        return;
      }
    }
    const name = `${String(obj.metadata?.name)}.${randomBytes(8).toString('hex')}`;
    this.seen.set(k, name);
    const [group, version] = String(obj.apiVersion ?? 'v1').includes('/')
      ? String(obj.apiVersion).split('/')
      : ['', String(obj.apiVersion ?? 'v1')];
    void group;
    void version;
    this.store.create('events', {
      kind: 'Event',
      apiVersion: 'v1',
      metadata: { name, namespace: ns, uid: randomUUID(), creationTimestamp: t },
      involvedObject: {
        kind: obj.kind,
        namespace: obj.metadata?.namespace,
        name: obj.metadata?.name,
        uid: obj.metadata?.uid,
        apiVersion: obj.apiVersion,
        resourceVersion: obj.metadata?.resourceVersion,
        ...(obj.fieldPath ? { fieldPath: obj.fieldPath } : {}),
      },
      reason,
      message,
      source: { component, ...(host ? { host } : {}) },
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: component,
      reportingInstance: host ?? '',
    });
    this.onChange();
  }
}
