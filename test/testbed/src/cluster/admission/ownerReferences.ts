/**
 * The OwnerReferencesPermissionEnforcement admission plugin (off in a default kube-apiserver,
 * `--enable-admission-plugins` turns it on; OpenShift and some managed clusters run it). It
 * checks each create or update by a user, after validation, with the same authorizer as the
 * request:
 *
 * - a write that changes the object's ownerReferences (a create with any) needs `delete` on the
 *   object itself, else 403 `cannot set an ownerRef on a resource you can't delete: <reason>, <nil>`;
 * - each ownerReference that becomes blocking (`blockOwnerDeletion: true` on a new reference, or
 *   on one that was not blocking) needs `update` on the owner's `finalizers` subresource, by the
 *   owner's name in the object's namespace, else 403 `cannot set blockOwnerDeletion if an
 *   ownerReference refers to a resource you can't set finalizers on: <reason>, <nil>`; an owner
 *   kind the server does not serve is refused too (no RESTMapping).
 *
 * The reason is what the authorizer said; RBAC says nothing when it denies, so it is empty.
 * `pods/status` is exempt (its strategy keeps ownerReferences). Writes of the cluster's own
 * controllers do not go through it, as theirs are authorised by their own roles.
 */
import type { Attributes, User } from '../auth.js';
import { forbidden } from '../errors.js';
import { resourceForKind, type ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';

export interface OwnerRefWrite {
  inf: ResourceInfo;
  obj: Obj;
  /** the stored object an update replaces (undefined for a create) */
  old: Obj | undefined;
  subresource?: string | undefined;
  user: User;
  /** the request's authorizer */
  can: (a: Attributes) => boolean;
}

type Ref = Obj;

const refsOf = (o: Obj | undefined): Ref[] => ((o?.metadata?.ownerReferences ?? []) as Ref[]).filter((r) => r && typeof r === 'object');
const blocking = (r: Ref | undefined): boolean => r?.blockOwnerDeletion === true;

function changesOwnerReferences(obj: Obj, old: Obj | undefined): boolean {
  const now = refsOf(obj);
  if (!old) return now.length > 0;
  return JSON.stringify(now) !== JSON.stringify(refsOf(old));
}

/** References that block owner deletion now and did not before (new ones included). */
function newlyBlocking(obj: Obj, old: Obj | undefined): Ref[] {
  const before = new Map(refsOf(old).map((r) => [r.uid as string, r]));
  return refsOf(obj).filter((r) => blocking(r) && !blocking(before.get(r.uid as string)));
}

function attributes(w: OwnerRefWrite, a: Pick<Attributes, 'verb' | 'apiGroup' | 'resource' | 'subresource' | 'name'>): Attributes {
  return { ...a, resourceRequest: true, path: '', namespace: (w.obj.metadata?.namespace as string | undefined) ?? '' };
}

/** Throws the plugin's 403 when the write may not set the ownerReferences it sets. */
export function enforceOwnerReferencePermissions(w: OwnerRefWrite): void {
  if (w.inf.kind === 'Pod' && w.subresource === 'status') return;
  if (!changesOwnerReferences(w.obj, w.old)) return;
  const name = w.obj.metadata?.name as string | undefined;
  const refuse = (why: string) => forbidden(w.inf, name, why);
  const del = attributes(w, {
    verb: 'delete',
    apiGroup: w.inf.group,
    resource: w.inf.plural,
    subresource: w.subresource ?? '',
    name: name ?? '',
  });
  if (!w.can(del)) throw refuse("cannot set an ownerRef on a resource you can't delete: , <nil>");
  for (const ref of newlyBlocking(w.obj, w.old)) {
    const apiVersion = String(ref.apiVersion ?? '');
    const kind = String(ref.kind ?? '');
    const owner = resourceForKind(apiVersion, kind);
    if (!owner)
      throw refuse(
        `cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion ${apiVersion} Kind ${kind}: , no matches for kind "${kind}" in version "${apiVersion}"`,
      );
    const fin = attributes(w, {
      verb: 'update',
      apiGroup: owner.group,
      resource: owner.plural,
      subresource: 'finalizers',
      name: String(ref.name ?? ''),
    });
    if (!w.can(fin))
      throw refuse("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>");
  }
}
