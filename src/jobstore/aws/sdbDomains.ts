/**
 * The SimpleDB domains of an AWS job store with `--awsMetadata simpledb`: `<name>--jobs` (job
 * records) and `<name>--files` (shared files, message claims). Creating them is all or nothing:
 * a domain that cannot be created, or that already holds items (CreateDomain succeeds on an
 * existing domain, so this is checked), undoes the domains made so far and names the problem.
 */
import { JobStoreError, NotFoundError, ToilError } from '../../errors.js';
import { quoteName } from './sdbItems.js';
import type { SimpleDbClient } from './simpledb/client.js';

export type SdbDomainApi = Pick<SimpleDbClient, 'createDomain' | 'deleteDomain' | 'selectAll'>;

export interface StoreDomains {
  jobs: string;
  files: string;
}

/** Item name prefixes in `<name>--files`. */
export const SHARED_ITEMS = 'shared/';
export const CLAIM_ITEMS = 'claims/';

export function storeDomains(storeName: string): StoreDomains {
  return { jobs: `${storeName}--jobs`, files: `${storeName}--files` };
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Pages are followed: SimpleDB may answer a Select with an empty page and a NextToken. */
async function holdsItems(sdb: SdbDomainApi, domain: string): Promise<boolean> {
  const items = sdb.selectAll({ expression: `select itemName() from ${quoteName(domain)} limit 1`, consistentRead: true });
  for await (const _ of items) return true;
  return false;
}

/** Deletes domains; a domain that is already gone is fine. */
export async function deleteDomains(sdb: SdbDomainApi, domains: readonly string[]): Promise<void> {
  for (const d of domains) {
    try {
      await sdb.deleteDomain(d);
    } catch (e) {
      if (!(e instanceof NotFoundError)) throw e;
    }
  }
}

/**
 * Creates the store's domains, each empty. On failure the domains created here are deleted again
 * (a domain found holding items is left alone) and the error says which domain and why.
 */
export async function createDomains(sdb: SdbDomainApi, domains: StoreDomains, locator: string): Promise<void> {
  const made: string[] = [];
  for (const d of [domains.jobs, domains.files]) {
    let failure: JobStoreError | undefined;
    try {
      await sdb.createDomain(d);
      if (await holdsItems(sdb, d)) {
        failure = new JobStoreError(
          'JOBSTORE_EXISTS',
          `cannot create job store ${locator}: SimpleDB domain ${d} already exists and holds items (left by another job store of that name?); delete it first`,
        );
      } else {
        made.push(d);
      }
    } catch (e) {
      const retryable = e instanceof ToilError && e.retryable;
      failure = new JobStoreError('JOBSTORE', `cannot create job store ${locator}: creating SimpleDB domain ${d} failed: ${describe(e)}`, {
        cause: e,
        retryable,
      });
      // It may have been created even so (an answer lost after retries): an empty one is ours.
      if (!(await holdsItems(sdb, d).catch(() => true))) made.push(d);
    }
    if (failure) {
      await deleteDomains(sdb, made).catch(() => {});
      throw failure;
    }
  }
}
