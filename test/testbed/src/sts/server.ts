/**
 * A test STS: AWS Security Token Service's Query API (2011-06-15) over HTTP on 127.0.0.1, in this
 * process, answering `AssumeRoleWithWebIdentity` as AWS does (`assume.ts`) for the OpenID Connect
 * providers and roles registered with it (`account.ts`) — with the keys it fetches from each
 * issuer (`oidc.ts`), such as the test cluster's service-account issuer. The credentials it
 * issues are accepted by test S3 servers started with `{ sts }` (`sessionToken.ts`).
 *
 * ```ts
 * const sts = await startTestSts();
 * sts.createOpenIdConnectProvider({ url: cluster.issuer, clientIds: ['sts.amazonaws.com'], caPem: cluster.caPem });
 * const role = sts.createRole({ roleName: 'toil', provider: cluster.issuer, subject: 'system:serviceaccount:toil:toil', audience: 'sts.amazonaws.com' });
 * const s3 = await startTestS3({ conditionalWrites: true, sts });
 * // AWS_ENDPOINT_URL_STS=sts.endpoint AWS_ROLE_ARN=role.arn AWS_WEB_IDENTITY_TOKEN_FILE=… : the SDK's chain does the rest
 * await s3.stop();
 * await sts.stop();
 * ```
 *
 * Requests are POST forms (as the SDKs send them) or GETs with a query string, unsigned (this
 * action needs no AWS credentials). Other actions are 400 `InvalidAction`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenOnLoopback, readQueryRequest, sendXml } from '../awsQuery.js';
import { StsAccount, type OpenIdConnectProvider, type WebIdentityRole } from './account.js';
import { assumeRoleWithWebIdentity, errorXml, StsError, type AssumeContext } from './assume.js';
import { IssuerKeys } from './oidc.js';
import { newSessionKey } from './sessionToken.js';

export type { OpenIdConnectProvider, WebIdentityRole } from './account.js';

const API_VERSION = '2011-06-15';
const MAX_BODY_BYTES = 64 * 1024;

export interface TestStsOptions {
  /** default: an ephemeral port on 127.0.0.1 */
  port?: number;
  /** the account in ARNs (default 123456789012) */
  accountId?: string;
  /**
   * The shortest `DurationSeconds` taken, 900 as on AWS by default. Lower it (opt-in) to have
   * credentials that expire within a test.
   */
  minDurationSeconds?: number;
  /** bound on each fetch of an issuer's discovery document or key set (default 5000 ms) */
  keyFetchTimeoutMs?: number;
}

export interface StsCounts {
  total: number;
  byAction: Record<string, number>;
  /** credentials issued */
  issued: number;
  /** refused requests by error code */
  refused: Record<string, number>;
}

export interface TestSts {
  /** http://127.0.0.1:<port>, for AWS_ENDPOINT_URL_STS */
  endpoint: string;
  port: number;
  accountId: string;
  /** base64 of the key session tokens are sealed with: what a test S3 server needs to accept them */
  sessionKey: string;
  /** Registers an OpenID Connect provider (as `aws iam create-open-id-connect-provider`); returns its ARN. */
  createOpenIdConnectProvider(p: OpenIdConnectProvider): string;
  /** Creates a role trusting a registered provider for a subject (and audience); returns its ARN and id. */
  createRole(r: WebIdentityRole): { arn: string; roleId: string };
  requestCounts(): StsCounts;
  resetCounts(): void;
  stop(): Promise<void>;
}

const newCounts = (): StsCounts => ({ total: 0, byAction: {}, issued: 0, refused: {} });

async function run(req: IncomingMessage, ctx: AssumeContext, counts: StsCounts): Promise<string> {
  const r = await readQueryRequest(req, {
    maxBodyBytes: MAX_BODY_BYTES,
    tooLarge: () => new StsError('ValidationError', 400, 'Request body too large'),
  });
  const action = r.params.get('Action') ?? '';
  counts.total++;
  counts.byAction[action] = (counts.byAction[action] ?? 0) + 1;
  const version = r.params.get('Version') ?? '';
  if (action !== 'AssumeRoleWithWebIdentity' || version !== API_VERSION)
    throw new StsError('InvalidAction', 400, `Could not find operation ${action} for version ${version}`);
  const xml = await assumeRoleWithWebIdentity(r.params, ctx);
  counts.issued++;
  return xml;
}

export async function startTestSts(opts: TestStsOptions = {}): Promise<TestSts> {
  const account = new StsAccount(opts.accountId ?? '123456789012');
  const sessionKey = newSessionKey();
  const ctx: AssumeContext = {
    account,
    keys: new IssuerKeys({ timeoutMs: opts.keyFetchTimeoutMs ?? 5000, maxAgeMs: 10 * 60_000 }),
    sessionKey,
    minDurationSeconds: opts.minDurationSeconds ?? 900,
    now: () => Date.now(),
  };
  let counts = newCounts();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      sendXml(res, 200, await run(req, ctx, counts));
    } catch (e) {
      if (!(e instanceof StsError)) process.stderr.write(`test STS: internal error: ${(e as Error).stack ?? String(e)}\n`);
      const err = e instanceof StsError ? e : new StsError('InternalFailure', 500, 'An internal error occurred.', 'Receiver');
      counts.refused[err.code] = (counts.refused[err.code] ?? 0) + 1;
      sendXml(res, err.status, errorXml(err));
    }
  };
  const { port, close } = await listenOnLoopback(handle, opts.port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    accountId: account.accountId,
    sessionKey: sessionKey.toString('base64'),
    createOpenIdConnectProvider: (p) => account.createOpenIdConnectProvider(p),
    createRole: (r) => {
      const role = account.createRole(r);
      return { arn: role.arn, roleId: role.roleId };
    },
    requestCounts: () => structuredClone(counts),
    resetCounts: () => {
      counts = newCounts();
    },
    stop: close,
  };
}
