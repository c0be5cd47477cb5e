/** One test cluster + test S3 environment per jest suite. */
import { afterAll, beforeAll } from '@jest/globals';
import type { TestClusterOptions } from '@toil-ts/testbed/cluster';
import { startK8sEnv, type K8sEnv } from './setup.js';

/** Starts the environment before the suite and stops it after; the object reads through to it. */
export function useK8sEnv(opts: TestClusterOptions = {}): K8sEnv {
  let current: K8sEnv | undefined;
  beforeAll(async () => {
    current = await startK8sEnv(opts);
  }, 60_000);
  afterAll(async () => {
    await current?.stop();
  });
  return new Proxy({} as K8sEnv, {
    get(_target, prop) {
      if (!current) throw new Error('the Kubernetes test environment is not started yet');
      return current[prop as keyof K8sEnv];
    },
  });
}
