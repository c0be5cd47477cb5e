/**
 * Field selectors as a real API server has them: each resource accepts exactly the field labels
 * its conversion function accepts (anything else is refused with that function's message), and a
 * selector is matched against the resource's selectable fields, computed from the object the way
 * the server's registry computes them (defaults such as `spec.hostNetwork=false` included).
 */
import type { ResourceInfo } from './resources.js';
import { SelectorError, type Obj } from './store.js';

export interface FieldReq {
  field: string;
  op: '=' | '!=';
  value: string;
}

/** How one resource answers field selectors. */
interface FieldSpec {
  /** labels accepted, mapped to the label they stand for (`spec.host` → `spec.nodeName`) */
  labels: Record<string, string>;
  /** the refusal for any other label */
  refuse: (label: string) => string;
  /** the selectable fields of an object (labels missing here select as the empty string) */
  fields: (o: Obj) => Record<string, string>;
}

const same = (...ls: string[]): Record<string, string> => Object.fromEntries(ls.map((l) => [l, l]));
const notSupported = (label: string): string => `field label not supported: ${label}`;
const defaultRefusal = (label: string): string => `"${label}" is not a known field selector: only "metadata.name", "metadata.namespace"`;

function metaFields(o: Obj, namespaced: boolean): Record<string, string> {
  const m: Record<string, string> = { 'metadata.name': String(o.metadata?.name ?? '') };
  if (namespaced) m['metadata.namespace'] = String(o.metadata?.namespace ?? '');
  return m;
}

/** `status.podIPs` is an accepted label but, as on a real server, not a selectable field: it selects as ''. */
function podFields(o: Obj): Record<string, string> {
  const ips = (o.status?.podIPs ?? []) as { ip?: string }[];
  return {
    ...metaFields(o, true),
    'spec.nodeName': String(o.spec?.nodeName ?? ''),
    'spec.restartPolicy': String(o.spec?.restartPolicy ?? ''),
    'spec.schedulerName': String(o.spec?.schedulerName ?? ''),
    'spec.serviceAccountName': String(o.spec?.serviceAccountName ?? ''),
    'spec.hostNetwork': String(o.spec?.hostNetwork === true),
    'status.phase': String(o.status?.phase ?? ''),
    'status.podIP': String(ips[0]?.ip ?? o.status?.podIP ?? ''),
    'status.nominatedNodeName': String(o.status?.nominatedNodeName ?? ''),
  };
}

function eventFields(o: Obj): Record<string, string> {
  const inv = (o.involvedObject ?? {}) as Record<string, unknown>;
  const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
  return {
    ...metaFields(o, true),
    'involvedObject.kind': str(inv.kind),
    'involvedObject.namespace': str(inv.namespace),
    'involvedObject.name': str(inv.name),
    'involvedObject.uid': str(inv.uid),
    'involvedObject.apiVersion': str(inv.apiVersion),
    'involvedObject.resourceVersion': str(inv.resourceVersion),
    'involvedObject.fieldPath': str(inv.fieldPath),
    reason: str(o.reason),
    reportingComponent: str(o.reportingComponent),
    source: str(o.source?.component || o.reportingComponent),
    type: str(o.type),
  };
}

const EVENT_LABELS = [
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
];

const SPECS: Record<string, FieldSpec> = {
  pods: {
    labels: {
      ...same(
        'metadata.name',
        'metadata.namespace',
        'spec.nodeName',
        'spec.restartPolicy',
        'spec.schedulerName',
        'spec.serviceAccountName',
        'spec.hostNetwork',
        'status.phase',
        'status.podIP',
        'status.podIPs',
        'status.nominatedNodeName',
      ),
      'spec.host': 'spec.nodeName',
    },
    refuse: notSupported,
    fields: podFields,
  },
  events: { labels: same('metadata.name', 'metadata.namespace', ...EVENT_LABELS), refuse: notSupported, fields: eventFields },
  'batch/jobs': {
    labels: same('metadata.name', 'metadata.namespace', 'status.successful'),
    refuse: (label) => `field label "${label}" not supported for batchv1.Job`,
    fields: (o) => ({ ...metaFields(o, true), 'status.successful': String(Number(o.status?.succeeded ?? 0)) }),
  },
  secrets: {
    labels: same('metadata.name', 'metadata.namespace', 'type'),
    refuse: notSupported,
    fields: (o) => ({ ...metaFields(o, true), type: String(o.type ?? '') }),
  },
  namespaces: {
    labels: same('metadata.name', 'status.phase'),
    refuse: notSupported,
    fields: (o) => ({ ...metaFields(o, false), 'status.phase': String(o.status?.phase ?? '') }),
  },
  nodes: {
    labels: same('metadata.name', 'spec.unschedulable'),
    refuse: notSupported,
    fields: (o) => ({ ...metaFields(o, false), 'spec.unschedulable': String(o.spec?.unschedulable === true) }),
  },
};

function specFor(key: string, info: Pick<ResourceInfo, 'namespaced'>): FieldSpec {
  return (
    SPECS[key] ?? {
      labels: same('metadata.name', 'metadata.namespace'),
      refuse: defaultRefusal,
      fields: (o) => metaFields(o, info.namespaced),
    }
  );
}

/** Splits on unescaped commas (`\,` stays in the term), as the server's parser does. */
function splitTerms(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[++i]!;
    } else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

const unescape = (v: string): string => v.replace(/\\(.)/g, '$1');

/** A compiled field selector of one resource: `match(o)`; throws SelectorError (→ 400) when refused. */
export function compileFieldSelector(
  selector: string | undefined,
  key: string,
  info: Pick<ResourceInfo, 'namespaced'>,
): (o: Obj) => boolean {
  if (!selector) return () => true;
  const spec = specFor(key, info);
  const reqs: FieldReq[] = [];
  for (const part of splitTerms(selector).sort()) {
    if (!part) continue;
    const m = /^(.*?)(!=|==|=)(.*)$/s.exec(part);
    if (!m) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    const field = spec.labels[m[1]!];
    if (!field) throw new SelectorError(spec.refuse(m[1]!));
    reqs.push({ field, op: m[2] === '!=' ? '!=' : '=', value: unescape(m[3]!) });
  }
  return (o) => {
    const f = spec.fields(o);
    return reqs.every((r) => ((f[r.field] ?? '') === r.value) === (r.op === '='));
  };
}
