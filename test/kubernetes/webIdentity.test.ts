/**
 * No long-lived AWS key anywhere: the leader runs in the cluster under the manifests' service
 * account and Role, with a projected token for `sts.amazonaws.com` and `AWS_ROLE_ARN`, as EKS's
 * IRSA gives a pod; the test STS trusts the test cluster as an OpenID Connect issuer, and the
 * test S3 server takes only what that STS issues. There is no `s3-credentials` secret in the
 * namespace: the leader and every worker pod reach the job store with temporary credentials.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { startTestCluster, type TestCluster } from '@toil-ts/testbed/cluster';
import { allowAnonymousIssuerDiscovery, kubectl } from '@toil-ts/testbed/cluster/testutil';
import { startTestS3, testS3WebIdentityEnv, type TestS3 } from '@toil-ts/testbed/s3';
import { startTestSts, type TestSts } from '@toil-ts/testbed/sts';
import { BIN, ROOT, waitFor } from '../helpers/run.js';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';

const TOKEN_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const MANIFESTS = path.join(ROOT, 'manifests', 'install');

let cluster: TestCluster;
let sts: TestSts;
let s3: TestS3;
let roleArn: string;

beforeAll(async () => {
  cluster = await startTestCluster({ jobBackoffBaseMs: 100, writableHostDirs: [ROOT] });
  expect((await allowAnonymousIssuerDiscovery(cluster.kubeconfigPath)).stderr).toBe('');
  for (const f of ['serviceaccount.yaml', 'role.yaml', 'rolebinding.yaml']) {
    const r = await kubectl(cluster.kubeconfigPath, ['apply', '-f', path.join(MANIFESTS, f)]);
    expect(r.stderr).toBe('');
  }
  sts = await startTestSts();
  sts.createOpenIdConnectProvider({ url: cluster.issuer, clientIds: ['sts.amazonaws.com'], caPem: cluster.caPem });
  roleArn = sts.createRole({
    roleName: 'toil-leader',
    provider: cluster.issuer,
    subject: 'system:serviceaccount:default:toil-leader',
    audience: 'sts.amazonaws.com',
  }).arn;
  s3 = await startTestS3({ conditionalWrites: true, sts });
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  await sts?.stop();
  await cluster?.stop();
});

/** The leader Job: the manifests' service account, an IRSA-style token and role, and no secret. */
function leaderJob(name: string, locator: string): string {
  const env: Record<string, string> = {
    ...testS3WebIdentityEnv(s3, { sts, roleArn, tokenFile: `${TOKEN_DIR}/token` }),
    TOIL_KUBERNETES_OWNER: 'demouser',
    // Pods run as local processes here: the worker command is this checkout's CLI.
    TOIL_KUBERNETES_WORKER_COMMAND: `${process.execPath} ${BIN} worker`,
  };
  const cmd = [process.execPath, BIN, 'run', `${ROOT}/examples/fanout.ts`, locator, '--batchSystem', 'kubernetes', '--', '4'];
  return JSON.stringify({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          serviceAccountName: 'toil-leader',
          restartPolicy: 'Never',
          containers: [
            {
              name: 'leader',
              image: 'toil-ts:test',
              command: cmd,
              env: [
                ...Object.entries(env).map(([n, value]) => ({ name: n, value })),
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
              ],
              volumeMounts: [{ name: 'aws-iam-token', mountPath: TOKEN_DIR, readOnly: true }],
            },
          ],
          volumes: [
            {
              name: 'aws-iam-token',
              projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
            },
          ],
        },
      },
    },
  });
}

type Obj = { metadata?: { labels?: Record<string, string> }; status?: { succeeded?: number; failed?: number } };

describe('web identity, no secret', () => {
  it('a workflow runs with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE and no s3-credentials secret in the namespace', async () => {
    await s3.resetCounts();
    sts.resetCounts();
    const applied = await kubectl(cluster.kubeconfigPath, ['apply', '-f', '-'], leaderJob('toil-leader', 'aws:us-east-1:web-identity'));
    expect(applied.code).toBe(0);
    let workerSaw = false;
    await waitFor(
      () => {
        const workers = (cluster.list('batch/jobs') as Obj[]).filter((j) => j.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY);
        if (workers.length > 0) workerSaw = true;
        const leader = cluster.get('batch/jobs', 'default', 'toil-leader') as Obj | undefined;
        return (leader?.status?.succeeded ?? 0) + (leader?.status?.failed ?? 0) > 0;
      },
      180_000,
      'the leader Job to finish',
    );
    const logs = await kubectl(cluster.kubeconfigPath, ['logs', 'job/toil-leader']);
    expect(logs.stdout).toMatch(/^14$/m);
    expect((cluster.get('batch/jobs', 'default', 'toil-leader') as Obj).status?.succeeded).toBe(1);
    expect(workerSaw).toBe(true);
    // No secret was there to use, and S3 saw only temporary credentials, from the leader and its 5 workers.
    expect(cluster.list('secrets', 'default')).toEqual([]);
    const counts = await s3.requestCount();
    expect(counts.auth.static).toBe(0);
    expect(counts.auth.temporary).toBeGreaterThan(0);
    expect(sts.requestCounts().issued).toBeGreaterThanOrEqual(6);
  }, 240_000);
});
