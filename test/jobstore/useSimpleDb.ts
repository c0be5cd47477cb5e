/**
 * For suites on `--awsMetadata simpledb` stores: a SimpleDB test server per suite (eventual
 * consistency on, as AWS behaves), this process's SimpleDB endpoint and test keys pointed at it
 * (`useTestSimpleDbEnv`), and a client to look at its domains.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { startSimpleDbServer, useTestSimpleDbEnv, type SimpleDbServer } from '@toil-ts/testbed/simpledb';
import { SimpleDbClient } from '../../src/jobstore/aws/simpledb/client.js';

export interface TestSimpleDb {
  readonly server: SimpleDbServer;
  /** A client of the server with the test credentials. */
  readonly client: SimpleDbClient;
  /** Environment for a CLI process. */
  env(): NodeJS.ProcessEnv;
  /** Every domain on the server. */
  domains(): Promise<string[]>;
}

export function useSimpleDb(): TestSimpleDb {
  let server: SimpleDbServer | undefined;
  let client: SimpleDbClient | undefined;
  let restoreEnv: () => void = () => {};
  beforeAll(async () => {
    server = await startSimpleDbServer();
    client = new SimpleDbClient({ region: 'us-east-1', endpoint: server.endpoint });
    restoreEnv = useTestSimpleDbEnv(server);
  }, 30_000);
  afterAll(async () => {
    restoreEnv();
    await server?.stop();
  });
  const started = <T>(x: T | undefined): T => {
    if (x === undefined) throw new Error('the SimpleDB test server is not started yet');
    return x;
  };
  return {
    get server() {
      return started(server);
    },
    get client() {
      return started(client);
    },
    env: () => ({ AWS_ENDPOINT_URL_SIMPLEDB: started(server).endpoint }),
    domains: async () => {
      const out: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await started(client).listDomains(nextToken !== undefined ? { nextToken } : {});
        out.push(...page.domains);
        nextToken = page.nextToken;
      } while (nextToken !== undefined);
      return out;
    },
  };
}
