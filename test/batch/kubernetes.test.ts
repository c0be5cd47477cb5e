/**
 * The batch system contract for `kubernetes` on the test cluster: worker pods are local
 * processes running this checkout's `toil worker`, the job store is the AWS job store on the
 * test S3 server, and no node has more than 4 cores, so a job asking for 64 is unschedulable.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesBatchSystem } from '../../src/batch/kubernetes.js';
import type { ClusterAccess } from '../../src/batch/kubeConfig.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { createLogger } from '../../src/log.js';
import { sharedTmp } from '../helpers/run.js';
import { useK8sEnv } from '../kubernetes/useK8sEnv.js';
import { useTestS3Env } from '@toil-ts/testbed/s3';
import { describeBatchSystemConformance } from './conformance.js';

const k = useK8sEnv();
let restoreEnv: () => void = () => {};
beforeAll(() => {
  // The test's own job store handle reaches the same S3 server as the pods.
  restoreEnv = useTestS3Env(k.s3);
});
afterAll(() => restoreEnv());

/** The test cluster as kubectl would find it through the environment's KUBECONFIG. */
function clusterAccess(): ClusterAccess {
  const kc = new KubeConfig();
  kc.loadFromFile(k.cluster.kubeconfigPath);
  return { kc, namespace: k.cluster.namespace, inCluster: false };
}

describeBatchSystemConformance(
  'kubernetes',
  async () => {
    const store = await openJobStore(k.locator());
    return {
      store,
      sharedDir: await sharedTmp(),
      makeBatch: (workflowId) =>
        KubernetesBatchSystem.create({
          workflowId,
          locator: store.locator,
          store,
          logger: createLogger('warning'),
          podTimeoutSeconds: 2,
          owner: k.env['TOIL_KUBERNETES_OWNER'],
          image: k.env['TOIL_APPLIANCE_SELF'],
          hostPath: k.env['TOIL_KUBERNETES_HOST_PATH'],
          awsSecretName: k.env['TOIL_AWS_SECRET_NAME'],
          env: k.env,
          access: clusterAccess(),
        }),
      beyondLimits: { requirements: { cores: 64 }, names: /it asks for 64 cores/ },
      leftovers: async () => k.leftoverJobs() + k.leftoverPods(),
    };
  },
  { endMs: 60_000, killMs: 15_000 },
);
