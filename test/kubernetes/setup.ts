/**
 * A workflow environment on the test cluster: the cluster, a test S3 server for the AWS job
 * store, the `s3-credentials` secret made with the real kubectl from a credentials file (as
 * the Kubernetes guide does), and the environment a user would set.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestCluster, type TestCluster, type TestClusterOptions } from '@toil-ts/testbed/cluster';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { BIN, ROOT } from '../helpers/run.js';
import { startTestS3, type TestS3 } from '@toil-ts/testbed/s3';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';

export interface K8sEnv {
  cluster: TestCluster;
  s3: TestS3;
  env: NodeJS.ProcessEnv;
  dir: string;
  locator(): string;
  /** Jobs of toil-ts still in the cluster. */
  leftoverJobs(): number;
  /** Pods of toil-ts worker Jobs still in the cluster. */
  leftoverPods(): number;
  stop(): Promise<void>;
}

let n = 0;

/** An AWS credentials file for the test S3 server in `dir`; with `endpoint`, its profile names it (endpoint_url). */
export async function writeS3Credentials(opts: { dir: string; endpoint?: string }): Promise<string> {
  const file = path.join(opts.dir, 'credentials');
  const endpoint = opts.endpoint ? `endpoint_url = ${opts.endpoint}\n` : '';
  await writeFile(file, `[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n${endpoint}`, { mode: 0o600 });
  return file;
}

/**
 * The `s3-credentials` secret as the guide makes it: `kubectl create secret generic
 * s3-credentials --from-file credentials`, from a credentials file for the test S3 server written
 * in `dir`. With `endpoint`, the profile also names the endpoint (endpoint_url); with `namespace`,
 * the secret goes there rather than into the current one.
 */
export async function createS3Secret(kubeconfig: string, opts: { dir: string; endpoint?: string; namespace?: string }): Promise<void> {
  const file = await writeS3Credentials(opts);
  const ns = opts.namespace ? ['-n', opts.namespace] : [];
  const made = await kubectl(kubeconfig, ['create', 'secret', 'generic', 's3-credentials', '--from-file', file, ...ns]);
  if (made.code !== 0) throw new Error(`kubectl create secret failed: ${made.stderr}`);
}

export async function startK8sEnv(opts: TestClusterOptions = {}): Promise<K8sEnv> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-k8s-'));
  const [cluster, s3] = await Promise.all([
    startTestCluster({ jobBackoffBaseMs: 100, writableHostDirs: [ROOT], ...opts }),
    startTestS3({ conditionalWrites: true }),
  ]);
  await createS3Secret(cluster.kubeconfigPath, { dir });
  const env: NodeJS.ProcessEnv = {
    KUBECONFIG: cluster.kubeconfigPath,
    TOIL_APPLIANCE_SELF: 'toil-ts:test',
    TOIL_AWS_SECRET_NAME: 's3-credentials',
    TOIL_KUBERNETES_OWNER: 'demouser',
    TOIL_KUBERNETES_HOST_PATH: '/data/scratch',
    // Pods run as local processes here: the worker command is this checkout's CLI.
    TOIL_KUBERNETES_WORKER_COMMAND: `${process.execPath} ${BIN} worker`,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    // The leader's own credentials; worker pods read theirs from the mounted secret.
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
  return {
    cluster,
    s3,
    env,
    dir,
    locator: () => `aws:us-east-1:k8s-${process.pid}-${++n}`,
    leftoverJobs: () =>
      cluster
        .list('batch/jobs')
        .filter((j) => (j as { metadata?: { labels?: Record<string, string> } }).metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY)
        .length,
    leftoverPods: () =>
      cluster
        .list('pods')
        .filter((p) => (p as { metadata?: { labels?: Record<string, string> } }).metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY)
        .length,
    stop: async () => {
      await Promise.all([cluster.stop(), s3.stop()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
