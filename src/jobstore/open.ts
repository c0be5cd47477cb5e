import { FileJobStore } from './file/fileJobStore.js';
import { parseLocator, type Locator } from './locator.js';
import type { JobStore } from './types.js';

export interface OpenOptions {
  /** Path of a file holding a 32-byte key for server-side encryption with a customer key (AWS). */
  sseKeyPath?: string;
  /** Where a new AWS job store keeps its metadata (`--awsMetadata`); an existing one follows its marker. */
  awsMetadata?: 's3' | 'simpledb';
}

/** Opens (does not create) the job store a locator names. */
export async function openJobStore(locator: string | Locator, opts: OpenOptions = {}): Promise<JobStore> {
  const loc = typeof locator === 'string' ? parseLocator(locator) : locator;
  switch (loc.kind) {
    case 'file':
      return new FileJobStore(loc.path, { fsync: process.env['TOIL_FILE_JOBSTORE_FSYNC'] !== 'false' });
    case 'aws': {
      // Loaded only when used: the AWS SDK takes a noticeable time to import.
      const { AwsJobStore } = await import('./aws/awsJobStore.js');
      return new AwsJobStore(loc, {
        ...(opts.sseKeyPath !== undefined ? { sseKeyPath: opts.sseKeyPath } : {}),
        ...(opts.awsMetadata !== undefined ? { metadata: opts.awsMetadata } : {}),
      });
    }
  }
}
