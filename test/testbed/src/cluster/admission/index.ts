/**
 * The admission chain every write goes through, in kube-apiserver's order: mutating plugins
 * (LimitRanger's defaults, then ServiceAccount) before the object is validated, then validating
 * plugins (LimitRanger's min/max, PodSecurity, the request's own — OwnerReferencesPermissionEnforcement
 * when on —, and ResourceQuota last, which charges the create). Writes of the cluster's own
 * controllers (the Job controller's pods) go through it too, as they do on a real cluster.
 */
import type { ResourceInfo } from '../resources.js';
import type { Obj, Store } from '../store.js';
import { applyLimitRangeDefaults, validateLimitRanges } from './limitRanger.js';
import { admitPodSecurity } from './podSecurity.js';
import { admitQuota } from './resourceQuota.js';
import { admitServiceAccount } from './serviceAccount.js';

/** One write: the resource, the object being written and (for an update) the stored one, the subresource, a dry run. */
export interface AdmissionRequest {
  inf: ResourceInfo;
  obj: Obj;
  old: Obj | undefined;
  subresource?: string | undefined;
  dryRun?: boolean | undefined;
  /** the request's own validating plugins (they need its user) */
  own?: ((obj: Obj, old: Obj | undefined) => void) | undefined;
}

export class Admission {
  constructor(private store: Store) {}

  /** Mutating plugins (creates of pods: resource defaults and the service account). */
  mutate(r: AdmissionRequest): void {
    if (r.old || r.subresource) return;
    applyLimitRangeDefaults(this.store, r.inf, r.obj);
    admitServiceAccount(this.store, r.inf, r.obj);
  }

  /** Validating plugins: throws the first refusal, else returns the warnings. */
  validate(r: AdmissionRequest): string[] {
    if (r.subresource) {
      r.own?.(r.obj, r.old);
      return [];
    }
    if (!r.old) validateLimitRanges(this.store, r.inf, r.obj);
    const warnings = admitPodSecurity({ inf: r.inf, obj: r.obj, old: r.old, store: this.store });
    r.own?.(r.obj, r.old);
    if (!r.old) admitQuota({ store: this.store, inf: r.inf, obj: r.obj, dryRun: !!r.dryRun });
    return warnings;
  }
}
