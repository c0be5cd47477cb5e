/**
 * The ServiceAccount admission plugin: a pod gets its service account (`default` unless it names
 * one; 403 when that account does not exist) and, unless `automountServiceAccountToken` is false
 * on the pod (or, when the pod does not say, on the account), the projected
 * `kube-api-access-xxxxx` volume (token, ca.crt, namespace) mounted read-only at
 * /var/run/secrets/kubernetes.io/serviceaccount in every container that has no mount there.
 */
import { forbidden } from '../errors.js';
import { randSuffix } from '../names.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj, Store } from '../store.js';

const MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';

export function admitServiceAccount(store: Store, inf: ResourceInfo, obj: Obj): void {
  if (inf.kind !== 'Pod') return;
  const spec = obj.spec as Obj;
  const sa = spec.serviceAccountName ?? spec.serviceAccount ?? 'default';
  spec.serviceAccountName = sa;
  spec.serviceAccount = sa;
  const saObj = store.peek('serviceaccounts', obj.metadata.namespace, sa);
  if (!saObj)
    throw forbidden(
      inf,
      obj.metadata.name,
      `error looking up service account ${obj.metadata.namespace}/${sa}: serviceaccount "${sa}" not found`,
    );
  const automount = spec.automountServiceAccountToken ?? saObj.automountServiceAccountToken ?? true;
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as Obj[];
  if (!automount || all.some((c) => (c.volumeMounts ?? []).some((m: Obj) => m.mountPath === MOUNT_PATH))) return;
  const vname = `kube-api-access-${randSuffix()}`;
  spec.volumes = [
    ...(spec.volumes ?? []),
    {
      name: vname,
      projected: {
        defaultMode: 420,
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    },
  ];
  for (const c of all) c.volumeMounts = [...(c.volumeMounts ?? []), { name: vname, readOnly: true, mountPath: MOUNT_PATH }];
}
