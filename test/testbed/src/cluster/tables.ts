/** Server-side printing (meta.k8s.io/v1 Table), which kubectl get / get -w ask for. */
import type { Obj } from './store.js';

export function age(ts: string | undefined, nowMs = Date.now()): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((nowMs - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ''}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

interface Col {
  name: string;
  type: string;
  format?: string;
  description: string;
  priority: number;
}
const col = (name: string, type = 'string', priority = 0, format = ''): Col => ({ name, type, format, description: name, priority });
const NAME = col('Name', 'string', 0, 'name');
const AGE = col('Age');

export function podStatusReason(p: Obj): string {
  let reason: string = p.status?.reason ?? p.status?.phase ?? 'Unknown';
  for (const cs of (p.status?.initContainerStatuses ?? []) as Obj[]) {
    if (cs.state?.terminated && cs.state.terminated.exitCode !== 0) {
      reason = `Init:${cs.state.terminated.reason ?? 'Error'}`;
      break;
    }
    if (cs.state?.waiting?.reason && cs.state.waiting.reason !== 'PodInitializing') {
      reason = `Init:${cs.state.waiting.reason}`;
      break;
    }
  }
  for (const cs of [...((p.status?.containerStatuses ?? []) as Obj[])].reverse()) {
    if (cs.state?.waiting?.reason) reason = cs.state.waiting.reason;
    else if (cs.state?.terminated?.reason) reason = cs.state.terminated.reason;
    else if (cs.state?.terminated)
      reason = cs.state.terminated.signal ? `Signal:${cs.state.terminated.signal}` : `ExitCode:${cs.state.terminated.exitCode}`;
  }
  if (p.metadata?.deletionTimestamp) reason = p.status?.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return reason;
}

/** `kubectl get pods`: name, ready containers, status, restarts, age, IP, node. */
function podCells(p: Obj): unknown[] {
  const cs = (p.status?.containerStatuses ?? []) as Obj[];
  const total = (p.spec?.containers ?? []).length;
  const ready = cs.filter((c) => c.ready).length;
  const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
  return [
    p.metadata.name,
    `${ready}/${total}`,
    podStatusReason(p),
    String(restarts),
    age(p.metadata.creationTimestamp),
    p.status?.podIP ?? '<none>',
    p.spec?.nodeName ?? '<none>',
    '<none>',
    '<none>',
  ];
}

/** `kubectl get jobs`: name, status (from the conditions), completions, duration, age, containers, images, selector. */
function jobCells(j: Obj): unknown[] {
  const conds = (j.status?.conditions ?? []) as Obj[];
  const t = (type: string): boolean => conds.some((c) => c.type === type && c.status === 'True');
  const status = t('Failed')
    ? 'Failed'
    : t('Complete')
      ? 'Complete'
      : t('Suspended')
        ? 'Suspended'
        : t('FailureTarget')
          ? 'FailureTarget'
          : t('SuccessCriteriaMet')
            ? 'SuccessCriteriaMet'
            : j.metadata.deletionTimestamp
              ? 'Terminating'
              : 'Running';
  const start = j.status?.startTime ? Date.parse(j.status.startTime) : undefined;
  const end = j.status?.completionTime ? Date.parse(j.status.completionTime) : Date.now();
  const dur = start === undefined ? '' : age(new Date(start).toISOString(), end);
  const cs = (j.spec?.template?.spec?.containers ?? []) as Obj[];
  const sel = Object.entries(j.spec?.selector?.matchLabels ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(',');
  return [
    j.metadata.name,
    status,
    j.spec?.completions === undefined
      ? `${j.status?.succeeded ?? 0}/1 of ${j.spec?.parallelism ?? 1}`
      : `${j.status?.succeeded ?? 0}/${j.spec.completions}`,
    dur,
    age(j.metadata.creationTimestamp),
    cs.map((c) => c.name).join(','),
    cs.map((c) => c.image).join(','),
    sel,
  ];
}

/** `kubectl get nodes`: name, Ready/NotReady (and SchedulingDisabled), roles, age, version. */
function nodeCells(n: Obj): unknown[] {
  const ready = (n.status?.conditions ?? []).find((c: Obj) => c.type === 'Ready');
  let st = ready?.status === 'True' ? 'Ready' : 'NotReady';
  if (n.spec?.unschedulable) st += ',SchedulingDisabled';
  return [n.metadata.name, st, '<none>', age(n.metadata.creationTimestamp), n.status?.nodeInfo?.kubeletVersion ?? ''];
}

/** `kubectl get quota`: name, age, `resource: used/hard` for requests (and counts), then for limits. */
function quotaCells(q: Obj): unknown[] {
  const request: string[] = [];
  const limit: string[] = [];
  for (const r of Object.keys(q.spec?.hard ?? {}).sort()) {
    const cell = `${r}: ${String(q.status?.used?.[r] ?? '0')}/${String(q.status?.hard?.[r] ?? '0')}`;
    (r.split('.')[0] === 'limits' && r.includes('.') ? limit : request).push(cell);
  }
  return [q.metadata.name, age(q.metadata.creationTimestamp), request.join(', '), limit.join(', ')];
}

function printer(resource: string): { cols: Col[]; cells: (o: Obj) => unknown[] } {
  switch (resource) {
    case 'pods':
      return {
        cols: [
          NAME,
          col('Ready'),
          col('Status'),
          col('Restarts'),
          AGE,
          col('IP', 'string', 1),
          col('Node', 'string', 1),
          col('Nominated Node', 'string', 1),
          col('Readiness Gates', 'string', 1),
        ],
        cells: podCells,
      };
    case 'batch/jobs':
      return {
        cols: [
          NAME,
          col('Status'),
          col('Completions'),
          col('Duration'),
          AGE,
          col('Containers', 'string', 1),
          col('Images', 'string', 1),
          col('Selector', 'string', 1),
        ],
        cells: jobCells,
      };
    case 'services':
      return {
        cols: [NAME, col('Type'), col('Cluster-IP'), col('External-IP'), col('Port(s)'), AGE, col('Selector', 'string', 1)],
        cells: (v) => [
          v.metadata.name,
          v.spec?.type ?? '',
          v.spec?.clusterIP ?? '',
          '<none>',
          ((v.spec?.ports ?? []) as Obj[]).map((p) => `${String(p.port)}/${String(p.protocol ?? 'TCP')}`).join(',') || '<none>',
          age(v.metadata.creationTimestamp),
          Object.entries(v.spec?.selector ?? {})
            .map(([k, x]) => `${k}=${String(x)}`)
            .join(',') || '<none>',
        ],
      };
    case 'namespaces':
      return {
        cols: [NAME, col('Status'), AGE],
        cells: (n) => [n.metadata.name, n.status?.phase ?? '', age(n.metadata.creationTimestamp)],
      };
    case 'secrets':
      return {
        cols: [NAME, col('Type'), col('Data', 'integer'), AGE],
        cells: (s) => [s.metadata.name, s.type, Object.keys(s.data ?? {}).length, age(s.metadata.creationTimestamp)],
      };
    case 'configmaps':
      return {
        cols: [NAME, col('Data', 'integer'), AGE],
        cells: (c) => [
          c.metadata.name,
          Object.keys(c.data ?? {}).length + Object.keys(c.binaryData ?? {}).length,
          age(c.metadata.creationTimestamp),
        ],
      };
    case 'serviceaccounts':
      return {
        cols: [NAME, col('Secrets', 'integer'), AGE],
        cells: (s) => [s.metadata.name, (s.secrets ?? []).length, age(s.metadata.creationTimestamp)],
      };
    case 'nodes':
      return {
        cols: [NAME, col('Status'), col('Roles'), AGE, col('Version')],
        cells: nodeCells,
      };
    case 'events':
      return {
        cols: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message')],
        cells: (e) => [
          age(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp),
          e.type,
          e.reason,
          `${String(e.involvedObject?.kind ?? '').toLowerCase()}/${String(e.involvedObject?.name ?? '')}`,
          e.message,
        ],
      };
    case 'resourcequotas':
      return { cols: [NAME, AGE, col('Request'), col('Limit')], cells: quotaCells };
    case 'rbac.authorization.k8s.io/rolebindings':
    case 'rbac.authorization.k8s.io/clusterrolebindings':
      return {
        cols: [NAME, col('Role'), AGE],
        cells: (b) => [b.metadata.name, `${String(b.roleRef?.kind)}/${String(b.roleRef?.name)}`, age(b.metadata.creationTimestamp)],
      };
    default:
      return { cols: [NAME, col('Created At', 'date')], cells: (o) => [o.metadata.name, o.metadata.creationTimestamp] };
  }
}

function partial(o: Obj, includeObject: string): Obj {
  if (includeObject === 'Object') return o;
  if (includeObject === 'None') return undefined as unknown as Obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

export function toTable(resource: string, items: Obj[], meta: Obj, includeObject = 'Metadata'): Obj {
  const p = printer(resource);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: meta,
    columnDefinitions: p.cols,
    rows: items.map((o) => ({ cells: p.cells(o), object: partial(o, includeObject) })),
  };
}
