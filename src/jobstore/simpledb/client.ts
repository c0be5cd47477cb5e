/**
 * A small typed client for Amazon SimpleDB over its Query API (version 2009-04-15).
 *
 * There is no SimpleDB client in the v3 AWS SDK, so this module signs requests itself with
 * Signature Version 2 (`sigv2.ts`) and takes only the credentials from the SDK's default provider
 * chain (`@aws-sdk/credential-providers`): environment, profiles (the `s3-credentials` secret),
 * web identity, container and instance roles, refreshed by the providers when they expire.
 */
import type { AwsCredentialIdentityProvider } from '@smithy/types';

export interface SdbAttribute {
  name: string;
  value: string;
}
export interface SdbPutAttribute {
  name: string;
  value: string;
  replace?: boolean;
}
export type SdbExpected = { name: string; value: string } | { name: string; exists: false };
export interface SdbItem {
  name: string;
  attributes: SdbAttribute[];
}
export interface SdbDomainMetadata {
  itemCount: number;
  attributeNameCount: number;
  attributeValueCount: number;
  itemNamesSizeBytes: number;
  attributeNamesSizeBytes: number;
  attributeValuesSizeBytes: number;
  /** seconds since the epoch, as SimpleDB reports it */
  timestamp: number;
}
/** An attribute to delete: all its values, or only `value`. */
export interface SdbDeleteAttribute {
  name: string;
  value?: string;
}

export interface SimpleDbClientOptions {
  region: string;
  /** default: AWS_ENDPOINT_URL_SIMPLEDB, else the regional endpoint (sdb.amazonaws.com for us-east-1, sdb.<region>.amazonaws.com) */
  endpoint?: string;
  /** default: the v3 SDK's default provider chain (fromNodeProviderChain) */
  credentials?: AwsCredentialIdentityProvider;
  /** retries for retryable errors, shared backoff (src/backoff.ts) */
  maxAttempts?: number;
}

function notImplemented(what: string): never {
  throw new Error(`SimpleDbClient.${what}: not implemented`);
}

export class SimpleDbClient {
  constructor(readonly opts: SimpleDbClientOptions) {}

  async createDomain(domain: string): Promise<void> {
    notImplemented(`createDomain(${domain})`);
  }

  async deleteDomain(domain: string): Promise<void> {
    notImplemented(`deleteDomain(${domain})`);
  }

  async listDomains(opts: { maxNumberOfDomains?: number; nextToken?: string } = {}): Promise<{ domains: string[]; nextToken?: string }> {
    notImplemented(`listDomains(${JSON.stringify(opts)})`);
  }

  async domainMetadata(domain: string): Promise<SdbDomainMetadata> {
    notImplemented(`domainMetadata(${domain})`);
  }

  async putAttributes(args: { domain: string; item: string; attributes: SdbPutAttribute[]; expected?: SdbExpected }): Promise<void> {
    notImplemented(`putAttributes(${args.domain})`);
  }

  async deleteAttributes(args: { domain: string; item: string; attributes?: SdbDeleteAttribute[]; expected?: SdbExpected }): Promise<void> {
    notImplemented(`deleteAttributes(${args.domain})`);
  }

  /** At most 25 items. */
  async batchPutAttributes(args: { domain: string; items: { name: string; attributes: SdbPutAttribute[] }[] }): Promise<void> {
    notImplemented(`batchPutAttributes(${args.domain})`);
  }

  /** At most 25 items. */
  async batchDeleteAttributes(args: { domain: string; items: { name: string; attributes?: SdbDeleteAttribute[] }[] }): Promise<void> {
    notImplemented(`batchDeleteAttributes(${args.domain})`);
  }

  async getAttributes(args: {
    domain: string;
    item: string;
    attributeNames?: string[];
    consistentRead?: boolean;
  }): Promise<SdbAttribute[]> {
    notImplemented(`getAttributes(${args.domain})`);
  }

  async select(args: {
    expression: string;
    consistentRead?: boolean;
    nextToken?: string;
  }): Promise<{ items: SdbItem[]; nextToken?: string }> {
    notImplemented(`select(${args.expression})`);
  }

  /** Every item of a Select, following NextToken page by page. */
  async *selectAll(args: { expression: string; consistentRead?: boolean }): AsyncIterable<SdbItem> {
    let nextToken: string | undefined;
    do {
      const page = await this.select({ ...args, ...(nextToken !== undefined ? { nextToken } : {}) });
      yield* page.items;
      nextToken = page.nextToken;
    } while (nextToken !== undefined);
  }
}
