/**
 * For CLI suites on `aws:` job stores: two test S3 servers per suite (one honouring
 * conditional writes, one ignoring them), this process's SDK pointed at the first, the
 * environment a `toil` child process needs for either, and fresh locators.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { startTestS3, useTestS3Env, type TestS3 } from '@toil-ts/testbed/s3';

export interface TestS3Pair {
  /** Honours If-Match / If-None-Match, as AWS S3 does. */
  readonly cond: TestS3;
  /** Ignores conditional writes, as many S3-compatible stores do. */
  readonly plain: TestS3;
  /** Environment for a CLI process using `s3`. */
  env(s3: TestS3): NodeJS.ProcessEnv;
  /** A new, unused `aws:us-east-1:<name>` locator. */
  locator(): string;
}

export function useTestS3Pair(): TestS3Pair {
  let cond: TestS3 | undefined;
  let plain: TestS3 | undefined;
  let restoreEnv: () => void = () => {};
  let n = 0;
  beforeAll(async () => {
    [cond, plain] = await Promise.all([startTestS3({ conditionalWrites: true }), startTestS3({ conditionalWrites: false })]);
    restoreEnv = useTestS3Env(cond);
  }, 30_000);
  afterAll(async () => {
    restoreEnv();
    await Promise.all([cond?.stop(), plain?.stop()]);
  });
  const started = (s: TestS3 | undefined): TestS3 => {
    if (!s) throw new Error('the test S3 servers are not started yet');
    return s;
  };
  return {
    get cond() {
      return started(cond);
    },
    get plain() {
      return started(plain);
    },
    env: (s3) => ({
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PROFILE: '',
    }),
    locator: () => `aws:us-east-1:e${process.pid}-${++n}-${Math.random().toString(36).slice(2, 7)}`,
  };
}
