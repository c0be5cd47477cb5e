/**
 * A small typed client for Amazon SimpleDB over its Query API (version 2009-04-15).
 *
 * There is no SimpleDB client in the v3 AWS SDK, so this module signs requests itself with
 * Signature Version 2 (`sigv2.ts`) and takes only the credentials from the SDK's default provider
 * chain (`@aws-sdk/credential-providers`): environment, profiles (the `s3-credentials` secret),
 * web identity, container and instance roles, refreshed by the providers when they expire.
 *
 * - Endpoint: `opts.endpoint`, else as for S3 (`awsConfig.ts`) with `AWS_ENDPOINT_URL_SIMPLEDB`,
 *   else AWS's regional one (`sdb.amazonaws.com` in us-east-1, `sdb.<region>.amazonaws.com`
 *   where SimpleDB is offered).
 * - Requests are form-encoded POSTs, signed afresh for every attempt. A request refused as
 *   expired (RequestExpired: this machine's clock is more than 15 minutes off) is signed again
 *   at once with the clock of the server's Date header, as the AWS SDKs correct clock skew.
 * - Errors (`errors.ts`): `ConditionalCheckFailed` and `AttributeDoesNotExist` (an `Expected`
 *   that does not hold) → ConflictError; `NoSuchDomain` → NotFoundError; 503s
 *   (ServiceUnavailable, throttling), request timeouts, 500s and connection failures are retried
 *   with the shared backoff (`maxAttempts` tries, default 10) and then → TransientError; anything
 *   else → a terminal JobStoreError. Every error carries SimpleDB's code as `context.awsCode`.
 * - Requests and the pauses between them carry the caller's request signal (`requestSignal.ts`):
 *   once it aborts, the call ends with the abandonment error, without more tries.
 * - A retried write may have been applied by an attempt whose answer was lost (a cut
 *   connection): a conditional write retried after such an attempt may then fail its own
 *   condition. The ConflictError says so (`context.afterUncertainAttempt`), for callers that
 *   can check whether the stored value is theirs.
 *
 * Secrets, signatures and session tokens never appear in errors or logs.
 */
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import {
  ConflictError,
  JobStoreError,
  NotFoundError,
  TransientError,
  UsageError,
  errorMessage,
  type ErrorContext,
} from '../../../errors.js';
import { configuredEndpoint } from '../awsConfig.js';
import { abandonedError, pause, requestSignal } from '../../requestSignal.js';
import { backoffDelay, isRetryableAwsCode, isThrottlingCode } from '../s3Retry.js';
import * as R from './requests.js';
import { checkResponse, domainMetadataOf, itemsOf, parseError, parseResult, type ResultAction, type SdbErrorInfo } from './responses.js';
import { sigV2Encode, signV2 } from './sigv2.js';
import type { SdbAttribute, SdbDeleteAttribute, SdbDomainMetadata, SdbExpected, SdbItem, SdbPutAttribute } from './types.js';

export type { SdbAttribute, SdbDeleteAttribute, SdbDomainMetadata, SdbExpected, SdbItem, SdbPutAttribute } from './types.js';

export interface SimpleDbClientOptions {
  region: string;
  /** default: AWS_ENDPOINT_URL_SIMPLEDB, else the regional endpoint (sdb.amazonaws.com for us-east-1, sdb.<region>.amazonaws.com) */
  endpoint?: string;
  /** default: the v3 SDK's default provider chain (fromNodeProviderChain) */
  credentials?: AwsCredentialIdentityProvider;
  /** tries (the first included, default 10) for retryable errors, with the shared backoff (src/backoff.ts) */
  maxAttempts?: number;
  /** how far this machine's clock is behind AWS's, in ms (default 0; corrected from the server's Date when a request is refused as expired) */
  systemClockOffsetMs?: number;
}

const API_VERSION = '2009-04-15';
/** Regions where AWS offers SimpleDB. */
const SDB_REGIONS = ['us-east-1', 'us-west-1', 'us-west-2', 'eu-west-1', 'ap-southeast-1', 'ap-southeast-2', 'ap-northeast-1', 'sa-east-1'];
const ATTEMPT_TIMEOUT_MS = 60_000;

/** The endpoint a client for this region uses: the option, the configured one, or AWS's. */
export function simpleDbEndpoint(region: string, endpoint?: string, env: NodeJS.ProcessEnv = process.env): URL {
  const configured = endpoint ?? configuredEndpoint(env, 'AWS_ENDPOINT_URL_SIMPLEDB');
  if (configured !== undefined) return new URL(configured);
  if (!SDB_REGIONS.includes(region))
    throw new UsageError(
      `SimpleDB is not offered in region '${region}' (it is in ${SDB_REGIONS.join(', ')}); set AWS_ENDPOINT_URL_SIMPLEDB for another endpoint`,
    );
  return new URL(region === 'us-east-1' ? 'https://sdb.amazonaws.com/' : `https://sdb.${region}.amazonaws.com/`);
}

/** A failed attempt: SimpleDB's answer, or no answer at all. */
class AttemptFailure extends Error {
  constructor(
    readonly info: SdbErrorInfo,
    readonly status: number | undefined,
    readonly uncertain: boolean,
    /** the server's clock (its Date header), when it answered */
    readonly serverTime?: number,
  ) {
    super(`${info.code}: ${info.message}`);
  }
  get retryable(): boolean {
    return this.status === undefined || this.status >= 500 || isRetryableAwsCode(this.info.code);
  }
}

/** The ToilError for a final failure of `action`. */
function toToilError(action: string, f: AttemptFailure, ctx: ErrorContext): Error {
  const context: ErrorContext = { ...ctx, awsCode: f.info.code, ...(f.info.requestId ? { requestId: f.info.requestId } : {}) };
  const what = `SimpleDB ${action}${ctx['domain'] ? ` on domain '${ctx['domain']}'` : ''}`;
  if (f.info.code === 'ConditionalCheckFailed' || f.info.code === 'AttributeDoesNotExist')
    return new ConflictError(`${what}: condition failed (${f.info.code}: ${f.info.message})`, context);
  if (f.info.code === 'NoSuchDomain') return new NotFoundError(`${what}: ${f.info.message || 'the domain does not exist'}`, context);
  if (f.retryable) return new TransientError(`${what} failed: ${f.message}`, { context });
  return new JobStoreError('JOBSTORE', `${what} failed: ${f.message}`, { context });
}

export class SimpleDbClient {
  private readonly endpoint: URL;
  private readonly credentials: AwsCredentialIdentityProvider;
  private readonly maxAttempts: number;
  private clockOffsetMs: number;

  constructor(readonly opts: SimpleDbClientOptions) {
    this.endpoint = simpleDbEndpoint(opts.region, opts.endpoint);
    this.credentials = opts.credentials ?? fromNodeProviderChain();
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? 10);
    this.clockOffsetMs = opts.systemClockOffsetMs ?? 0;
  }

  /** One signed POST; resolves with the body of a 2xx answer. */
  private async attempt(params: R.Params): Promise<string> {
    const creds = await this.credentials().catch((e: unknown) => {
      throw new JobStoreError('JOBSTORE', `SimpleDB: no AWS credentials: ${errorMessage(e)}`);
    });
    const now = new Date(Date.now() + this.clockOffsetMs);
    const signed = signV2({
      method: 'POST',
      endpoint: this.endpoint,
      params: { ...params, Version: API_VERSION },
      credentials: creds,
      now,
    });
    const res = await this.post(
      Object.entries(signed)
        .map(([k, v]) => `${sigV2Encode(k)}=${sigV2Encode(v)}`)
        .join('&'),
    );
    if (res.status >= 200 && res.status < 300) return res.text;
    const serverTime = Date.parse(res.date ?? '');
    // a 503 was refused before it was handled; a 500 or a gateway's 502/504 may have been applied
    const uncertain = res.status >= 500 && res.status !== 503;
    throw new AttemptFailure(parseError(res.status, res.text), res.status, uncertain, Number.isNaN(serverTime) ? undefined : serverTime);
  }

  /** The HTTP exchange; no answer is an uncertain AttemptFailure. */
  private async post(body: string): Promise<{ status: number; text: string; date: string | null }> {
    const caller = requestSignal();
    const timeout = AbortSignal.timeout(ATTEMPT_TIMEOUT_MS);
    try {
      const res = await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body,
        signal: caller ? AbortSignal.any([caller, timeout]) : timeout,
      });
      return { status: res.status, text: await res.text(), date: res.headers.get('date') };
    } catch (e) {
      if (caller?.aborted) throw abandonedError(`a SimpleDB request to ${this.endpoint.host}`, caller, e);
      const cause = (e as { cause?: { code?: unknown } }).cause;
      const code = typeof cause?.code === 'string' ? cause.code : (e as Error).name;
      throw new AttemptFailure({ code, message: `no answer from ${this.endpoint.host}: ${errorMessage(cause ?? e)}` }, undefined, true);
    }
  }

  /** After a RequestExpired, takes the server's clock once per call: whether to try again at once. */
  private correctClock(e: AttemptFailure, corrected: boolean): boolean {
    if (corrected || e.info.code !== 'RequestExpired' || e.serverTime === undefined) return false;
    this.clockOffsetMs = e.serverTime - Date.now();
    return true;
  }

  /** Runs `action` with retries; `parse` reads the answer (a malformed answer is terminal). */
  private async call<T>(action: string, params: R.Params, ctx: ErrorContext, parse: (body: string) => T): Promise<T> {
    let uncertain = false;
    let clockCorrected = false;
    for (let attempt = 1; ; attempt++) {
      let body: string;
      try {
        body = await this.attempt({ Action: action, ...params });
      } catch (e) {
        if (!(e instanceof AttemptFailure)) throw e;
        if (this.correctClock(e, clockCorrected)) {
          clockCorrected = true;
          continue;
        }
        if (!e.retryable || attempt >= this.maxAttempts) {
          throw toToilError(action, e, { ...ctx, attempts: attempt, ...(uncertain ? { afterUncertainAttempt: true } : {}) });
        }
        uncertain ||= e.uncertain;
        await pause(backoffDelay(attempt, {}, isThrottlingCode(e.info.code) || e.status === 503), `SimpleDB ${action}`);
        continue;
      }
      try {
        return parse(body);
      } catch (e) {
        throw new JobStoreError('JOBSTORE', `SimpleDB ${action}: malformed answer: ${errorMessage(e)}`, { context: ctx });
      }
    }
  }

  private result<A extends ResultAction>(action: A, params: R.Params, ctx: ErrorContext) {
    return this.call(action, params, ctx, (body) => parseResult(action, body));
  }

  private async noResult(action: string, params: R.Params, ctx: ErrorContext): Promise<void> {
    await this.call(action, params, ctx, (body) => checkResponse(action, body));
  }

  async createDomain(domain: string): Promise<void> {
    await this.noResult('CreateDomain', { DomainName: domain }, { domain });
  }

  async deleteDomain(domain: string): Promise<void> {
    await this.noResult('DeleteDomain', { DomainName: domain }, { domain });
  }

  async listDomains(opts: { maxNumberOfDomains?: number; nextToken?: string } = {}): Promise<{ domains: string[]; nextToken?: string }> {
    const params: R.Params = {};
    if (opts.maxNumberOfDomains !== undefined) params['MaxNumberOfDomains'] = String(opts.maxNumberOfDomains);
    if (opts.nextToken !== undefined) params['NextToken'] = opts.nextToken;
    const r = await this.result('ListDomains', params, {});
    return { domains: r.DomainName, ...(r.NextToken !== undefined ? { nextToken: r.NextToken } : {}) };
  }

  async domainMetadata(domain: string): Promise<SdbDomainMetadata> {
    return domainMetadataOf(await this.result('DomainMetadata', { DomainName: domain }, { domain }));
  }

  async putAttributes(args: { domain: string; item: string; attributes: SdbPutAttribute[]; expected?: SdbExpected }): Promise<void> {
    const params = { DomainName: args.domain, ItemName: args.item, ...R.putParams(args.attributes), ...R.expectedParams(args.expected) };
    await this.noResult('PutAttributes', params, { domain: args.domain, item: args.item });
  }

  async deleteAttributes(args: { domain: string; item: string; attributes?: SdbDeleteAttribute[]; expected?: SdbExpected }): Promise<void> {
    const params = { DomainName: args.domain, ItemName: args.item, ...R.deleteParams(args.attributes), ...R.expectedParams(args.expected) };
    await this.noResult('DeleteAttributes', params, { domain: args.domain, item: args.item });
  }

  /** At most 25 items. */
  async batchPutAttributes(args: { domain: string; items: { name: string; attributes: SdbPutAttribute[] }[] }): Promise<void> {
    const params = { DomainName: args.domain, ...R.batchParams(args.items, (i, prefix) => R.putParams(i.attributes, prefix)) };
    await this.noResult('BatchPutAttributes', params, { domain: args.domain, items: args.items.length });
  }

  /** At most 25 items. */
  async batchDeleteAttributes(args: { domain: string; items: { name: string; attributes?: SdbDeleteAttribute[] }[] }): Promise<void> {
    const params = { DomainName: args.domain, ...R.batchParams(args.items, (i, prefix) => R.deleteParams(i.attributes, prefix)) };
    await this.noResult('BatchDeleteAttributes', params, { domain: args.domain, items: args.items.length });
  }

  async getAttributes(args: {
    domain: string;
    item: string;
    attributeNames?: string[];
    consistentRead?: boolean;
  }): Promise<SdbAttribute[]> {
    const params = {
      DomainName: args.domain,
      ItemName: args.item,
      ...R.namesParams(args.attributeNames),
      ...R.consistentParam(args.consistentRead),
    };
    return (await this.result('GetAttributes', params, { domain: args.domain, item: args.item })).Attribute;
  }

  async select(args: {
    expression: string;
    consistentRead?: boolean;
    nextToken?: string;
  }): Promise<{ items: SdbItem[]; nextToken?: string }> {
    const params = {
      SelectExpression: args.expression,
      ...R.consistentParam(args.consistentRead),
      ...(args.nextToken !== undefined ? { NextToken: args.nextToken } : {}),
    };
    const r = await this.result('Select', params, { expression: args.expression });
    return { items: itemsOf(r), ...(r.NextToken !== undefined ? { nextToken: r.NextToken } : {}) };
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
