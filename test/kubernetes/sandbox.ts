/**
 * `npm run sandbox`: a Kubernetes cluster and an S3 endpoint on this machine, for trying the
 * manifests with no cloud account. Starts the test cluster (two nodes; pods run from images in
 * local buildah storage, as `npm run image` builds them) and the test S3 server, writes an AWS
 * credentials file whose profile names that endpoint, and prints what to run next. Serves until
 * Ctrl-C, then stops both.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startTestCluster } from '@toil-ts/testbed/cluster';
import { ROOT } from '../helpers/run.js';
import { startTestS3 } from '@toil-ts/testbed/s3';
import { writeS3Credentials } from './setup.js';

const dir = path.join(ROOT, '.tmp', 'sandbox');
await mkdir(dir, { recursive: true });
const [cluster, s3] = await Promise.all([
  startTestCluster({ containerImages: { storageDriver: 'vfs' }, stateDir: path.join(dir, 'cluster') }),
  startTestS3({ conditionalWrites: true }),
]);
await writeS3Credentials({ dir, endpoint: s3.endpoint });

process.stdout.write(`A test cluster at ${cluster.server} and an S3 endpoint at ${s3.endpoint} are running.

  export KUBECONFIG=${cluster.kubeconfigPath}
  (cd ${dir} && kubectl create secret generic s3-credentials --from-file credentials)
  kubectl apply -f manifests/leader-job.yaml
  kubectl logs -f job/toil-leader

The credentials file's profile names the S3 endpoint (endpoint_url), so the manifests work
unchanged. Pods run the images in local buildah storage: build toil-ts with 'npm run image'.
Ctrl-C stops the cluster and the S3 server (their state goes with them).
`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void Promise.all([cluster.stop(), s3.stop()]).then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
