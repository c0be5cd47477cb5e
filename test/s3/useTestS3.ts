/**
 * For suites that need one test S3 server honouring conditional writes (as AWS S3 does): started
 * before the suite with this process's SDK pointed at it (and so the `toil` processes it
 * starts), faults cleared after each test, stopped after the suite.
 */
import { afterAll, afterEach, beforeAll } from '@jest/globals';
import { startTestS3, useTestS3Env, type TestS3 } from '@toil-ts/testbed/s3';

export function useTestS3(): { readonly server: TestS3 } {
  let server: TestS3 | undefined;
  let restoreEnv = () => {};
  beforeAll(async () => {
    server = await startTestS3({ conditionalWrites: true });
    restoreEnv = useTestS3Env(server);
  }, 60_000);
  afterEach(async () => {
    await server?.setFaults({});
  });
  afterAll(async () => {
    restoreEnv();
    await server?.stop();
  });
  return {
    get server() {
      if (!server) throw new Error('the test S3 server is not started yet');
      return server;
    },
  };
}
