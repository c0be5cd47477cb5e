/**
 * A SimpleDB server for tests: the Query API (2009-04-15) over HTTP on 127.0.0.1, in this process,
 * state in memory. Requests are GET with a query string or POST with a form body; each is
 * checked as AWS checks it — Signature Version 2 (`auth.ts`), the API version, the operation's
 * parameters, limits and `Expected` conditions (`ops.ts`), the Select subset (`select.ts`) — and
 * answered with AWS's XML and error codes (`xml.ts`). Reads without ConsistentRead see the data
 * as it was `eventualConsistencyMs` ago (`store.ts`).
 *
 * Faults, drawn per request before it is handled: `errorRate` answers 503 ServiceUnavailable,
 * `throttleRate` 503 Throttling, `cutRate` destroys the connection without an answer — half of
 * the cuts before the operation is applied, half after (the client cannot tell which: a
 * conditional write it retries may find its own first write); `emptySelectRate` answers a Select
 * with an empty page and a NextToken, as AWS does when a Select runs out of time.
 *
 * ```ts
 * const sdb = await startSimpleDbServer();            // keys S3RVER/S3RVER, 1 s consistency window
 * const restore = useTestSimpleDbEnv(sdb);           // AWS_ENDPOINT_URL_SIMPLEDB and the keys
 * sdb.setFaults({ errorRate: 0.05, cutRate: 0.05 });
 * await sdb.stop();
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { listenOnLoopback, readQueryRequest, sendXml as send, setEnv, type QueryRequest as Request } from '../awsQuery.js';
import { verifySigV2, type TestCredential } from './auth.js';
import { ACTIONS, type OpsContext } from './ops.js';
import { SdbStore } from './store.js';
import { errorXml, SdbError, sdbError } from './xml.js';

/** The keys the test S3 server (s3rver) accepts, and this server by default. */
export const TEST_ACCESS_KEY_ID = 'S3RVER';
export const TEST_SECRET_ACCESS_KEY = 'S3RVER';
const API_VERSION = '2009-04-15';
/** Larger bodies are refused (SimpleDB's batch calls carry at most 1 MB of data). */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export interface SimpleDbServerOptions {
  /** default: an ephemeral port on 127.0.0.1 */
  port?: number;
  /** default: the same test keys the S3 test server uses; a key with a `sessionToken` needs it as SecurityToken */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }[];
  /** reads without ConsistentRead may return the previous value for this long after a write; default 1000 ms (real: "usually within a second"); 0 = always consistent (opt-in) */
  eventualConsistencyMs?: number;
  /** domains per account (AWS: 250) */
  maxDomains?: number;
}

export interface SimpleDbFaults {
  /** fraction of requests answered 503 ServiceUnavailable */
  errorRate?: number;
  /** fraction of requests answered 503 with a throttling code */
  throttleRate?: number;
  /** fraction of requests whose connection is destroyed before answering */
  cutRate?: number;
  /** fraction of Selects answered with an empty page and a NextToken (as AWS answers a Select that runs out of time) */
  emptySelectRate?: number;
}

export interface SimpleDbServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  stop(): Promise<void>;
  /** requests received per Action, and 'total'; faults injected as 'fault:error', 'fault:throttle', 'fault:cut', 'fault:emptySelect' */
  requestCounts(): Record<string, number>;
  resetCounts(): void;
  setFaults(f: SimpleDbFaults): void;
}

class Counters {
  counts: Record<string, number> = { total: 0 };
  add(key: string): void {
    this.counts[key] = (this.counts[key] ?? 0) + 1;
  }
}

/** Authenticates and runs one request: the answer's XML, or the SdbError AWS would send. */
function run(r: Request, ctx: OpsContext, keys: readonly TestCredential[]): string {
  if (r.method !== 'GET' && r.method !== 'POST')
    throw sdbError('UnsupportedHttpVerb', `The requested HTTP verb is not supported: ${r.method}`);
  verifySigV2({ ...r, keys, now: Date.now() });
  const version = r.params.get('Version');
  if (version !== API_VERSION)
    throw sdbError('NoSuchVersion', `The requested version (${version ?? ''}) of service AmazonSimpleDB does not exist.`);
  const action = r.params.get('Action');
  if (action === undefined) throw sdbError('MissingAction', 'No action was supplied with this request.');
  const handler = ACTIONS[action];
  if (handler === undefined) throw sdbError('InvalidAction', `The action ${action} is not valid for this web service.`);
  return handler(r.params, ctx);
}

export async function startSimpleDbServer(opts: SimpleDbServerOptions = {}): Promise<SimpleDbServer> {
  const keys = opts.credentials ?? [{ accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY }];
  const counters = new Counters();
  let faults: SimpleDbFaults = {};
  const ctx: OpsContext = {
    store: new SdbStore(opts.eventualConsistencyMs ?? 1000),
    maxDomains: opts.maxDomains ?? 250,
    emptySelectPage: () => {
      if (Math.random() >= (faults.emptySelectRate ?? 0)) return false;
      counters.add('fault:emptySelect');
      return true;
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let r: Request;
    try {
      r = await readQueryRequest(req, {
        maxBodyBytes: MAX_BODY_BYTES,
        tooLarge: () => sdbError('InvalidHttpRequest', 'The request body is too large.'),
      });
    } catch (e) {
      return send(res, 400, errorXml(e instanceof SdbError ? e : sdbError('InvalidHttpRequest', 'The request could not be read.')));
    }
    counters.add('total');
    counters.add(r.params.get('Action') ?? '(none)');
    const roll = Math.random();
    const cut = Math.random() < (faults.cutRate ?? 0) ? (Math.random() < 0.5 ? 'before' : 'after') : undefined;
    if (cut) counters.add('fault:cut');
    if (cut === 'before') return void req.socket.destroy();
    if (roll < (faults.errorRate ?? 0)) {
      counters.add('fault:error');
      return send(
        res,
        503,
        errorXml(sdbError('ServiceUnavailable', 'Service AmazonSimpleDB is currently unavailable. Please try again later.')),
      );
    }
    if (roll < (faults.errorRate ?? 0) + (faults.throttleRate ?? 0)) {
      counters.add('fault:throttle');
      return send(res, 503, errorXml(sdbError('Throttling', 'Rate exceeded')));
    }
    let status = 200;
    let xml: string;
    try {
      xml = run(r, ctx, keys);
    } catch (e) {
      // a fault of this server (not of the request) is shown, and answered as AWS answers its own
      if (!(e instanceof SdbError)) process.stderr.write(`test SimpleDB server: internal error: ${(e as Error).stack ?? String(e)}\n`);
      const err = e instanceof SdbError ? e : sdbError('InternalError', 'Request could not be executed due to an internal service error.');
      [status, xml] = [err.status, errorXml(err)];
    }
    if (cut === 'after') return void req.socket.destroy();
    send(res, status, xml);
  };

  const { port, close } = await listenOnLoopback(handle, opts.port);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: close,
    requestCounts: () => ({ ...counters.counts }),
    resetCounts() {
      counters.counts = { total: 0 };
    },
    setFaults(f) {
      faults = { ...f };
    },
  };
}

/**
 * Points this process's SimpleDB client (and the AWS SDK's credential chain) at the test server:
 * AWS_ENDPOINT_URL_SIMPLEDB, the test keys, the region; no profile, no session token. Returns a
 * function that restores the previous values.
 */
export function useTestSimpleDbEnv(server: SimpleDbServer): () => void {
  return setEnv({
    AWS_ENDPOINT_URL_SIMPLEDB: server.endpoint,
    AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: TEST_SECRET_ACCESS_KEY,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PROFILE: undefined,
    AWS_SESSION_TOKEN: undefined,
  });
}
