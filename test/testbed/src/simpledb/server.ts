/**
 * A SimpleDB server for tests: the Query API (2009-04-15) over HTTP on 127.0.0.1, state in
 * memory, Signature Version 2 checked, AWS's limits and error codes, eventual consistency for
 * reads without ConsistentRead, fault injection and request counters.
 */
export interface SimpleDbServerOptions {
  /** default: an ephemeral port on 127.0.0.1 */
  port?: number;
  /** default: the same test keys the S3 test server uses */
  credentials?: { accessKeyId: string; secretAccessKey: string }[];
  /** reads without ConsistentRead may return the previous value for this long after a write; default 1000 ms (real: "usually within a second"); 0 = always consistent (opt-in) */
  eventualConsistencyMs?: number;
}

export interface SimpleDbFaults {
  /** fraction of requests answered 503 ServiceUnavailable */
  errorRate?: number;
  /** fraction of requests answered 503 with a throttling code */
  throttleRate?: number;
  /** fraction of requests whose connection is destroyed before answering */
  cutRate?: number;
}

export interface SimpleDbServer {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  stop(): Promise<void>;
  /** requests received per Action, and 'total' */
  requestCounts(): Record<string, number>;
  resetCounts(): void;
  setFaults(f: SimpleDbFaults): void;
}

export async function startSimpleDbServer(opts: SimpleDbServerOptions = {}): Promise<SimpleDbServer> {
  throw new Error(`startSimpleDbServer: not implemented (${JSON.stringify(opts.port)})`);
}
