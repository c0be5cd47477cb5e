/** core/v1 Event recording, aggregated by (object, reason, message) as client-go's recorder does. */
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

export class Recorder {
  private seen = new Map<string, string>(); // key -> event name
  constructor(
    private store: Store,
    private onChange: () => void,
  ) {}

  record(obj: Obj, event: EventSpec): void {
    const { type, reason, message, component, host } = event;
    const ns = (obj.metadata?.namespace as string | undefined) ?? 'default';
    const k = `${String(obj.metadata?.uid)}|${reason}|${message}|${component}`;
    const t = now();
    const existingName = this.seen.get(k);
    if (existingName) {
      const e = this.store.get('events', ns, existingName);
      if (e) {
        e.count = (e.count ?? 1) + 1;
        e.lastTimestamp = t;
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
