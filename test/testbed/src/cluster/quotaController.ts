/**
 * The resource quota controller: each ResourceQuota's `status.hard` follows `spec.hard`, and
 * `status.used` is recomputed from the objects stored in its namespace (admission/resourceQuota.ts
 * says what each costs), so that the use of pods that ended, or went, is freed. The real
 * controller does this on every pod change (its replenishment controller) and on a full resync.
 */
import { namespaceUsage } from './admission/resourceQuota.js';
import { RESOURCES } from './resources.js';
import type { Registry } from './registry.js';
import { info } from './registry.js';
import type { Obj } from './store.js';

const QUOTA = info('', 'resourcequotas');
const COUNTED = RESOURCES.filter((r) => r.namespaced && !r.virtual);

export async function syncQuotas(reg: Registry): Promise<void> {
  for (const q of reg.store.list('resourcequotas')) {
    const hard = { ...((q.spec?.hard ?? {}) as Record<string, string>) };
    const used = namespaceUsage(reg.store, q.metadata.namespace, Object.keys(hard), COUNTED);
    if (JSON.stringify(q.status?.hard ?? {}) === JSON.stringify(hard) && JSON.stringify(q.status?.used ?? {}) === JSON.stringify(used))
      continue;
    await reg.mutate(
      { inf: QUOTA, ns: q.metadata.namespace, name: q.metadata.name },
      (x: Obj) => {
        x.status = { hard, used };
      },
      'status',
    );
  }
}
