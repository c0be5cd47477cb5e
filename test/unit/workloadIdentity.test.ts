/** What a worker pod gets to use the leader's web identity: a pure function of the leader's environment and pod. */
import { describe, expect, it } from '@jest/globals';
import type { V1Pod, V1Volume } from '@kubernetes/client-node';
import { Pod as PodModel } from 'kubernetes-models/v1';
import { workloadIdentity, type WorkloadIdentity } from '../../src/batch/workloadIdentity.js';
import { UsageError } from '../../src/errors.js';
import { workerJobOptions } from '../../src/batch/kubeCluster.js';
import { buildJob } from '../../src/batch/kubernetesSpec.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const REQ: ResolvedRequirements = { cores: 1, memory: 2 ** 30, disk: 2 ** 30, accelerators: [], preemptible: false };

const TOKEN_DIR = '/var/run/secrets/eks.amazonaws.com/serviceaccount';
const ROLE = 'arn:aws:iam::111122223333:role/toil-leader';
/** What the EKS webhook puts in a pod of an annotated service account (with a region configured). */
const EKS_ENV = {
  AWS_ROLE_ARN: ROLE,
  AWS_WEB_IDENTITY_TOKEN_FILE: `${TOKEN_DIR}/token`,
  AWS_STS_REGIONAL_ENDPOINTS: 'regional',
  AWS_REGION: 'us-west-2',
  AWS_DEFAULT_REGION: 'us-west-2',
  HOME: '/home/toil',
  AWS_ENDPOINT_URL_S3: 'https://s3.example',
};

/** A worker pod carrying the result, checked against the official schema. */
function validateInPod(id: WorkloadIdentity): void {
  new PodModel({
    metadata: { name: 'worker' },
    spec: {
      restartPolicy: 'Never',
      volumes: [id.volume],
      containers: [{ name: 'worker', image: 'toil-ts:1.0', env: id.env, volumeMounts: [id.volumeMount] }],
    },
  } as never).validate();
}

/** A leader pod with the default API token volume and `volume` mounted at `mountPath`. */
function leaderPod(volume: V1Volume, mountPath: string): V1Pod {
  return {
    metadata: { name: 'leader-abcde', namespace: 'toil' },
    spec: {
      serviceAccountName: 'toil-leader',
      volumes: [
        { name: 'kube-api-access-x1y2z', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } },
        volume,
      ],
      containers: [
        {
          name: 'leader',
          image: 'toil-ts:1.0',
          volumeMounts: [
            { name: 'kube-api-access-x1y2z', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
            { name: volume.name, mountPath, readOnly: true },
          ],
        },
      ],
    },
  };
}

describe('workloadIdentity', () => {
  it('is undefined when the leader uses no web identity', () => {
    expect(workloadIdentity({})).toBeUndefined();
    expect(workloadIdentity({ AWS_ROLE_ARN: ROLE })).toBeUndefined();
    expect(workloadIdentity({ AWS_WEB_IDENTITY_TOKEN_FILE: `${TOKEN_DIR}/token` })).toBeUndefined();
    expect(workloadIdentity({ AWS_ROLE_ARN: '', AWS_WEB_IDENTITY_TOKEN_FILE: `${TOKEN_DIR}/token` })).toBeUndefined();
  });

  it('without the leader’s pod: the webhook’s volume, mount and variables, and only AWS’s identity variables', () => {
    const id = workloadIdentity(EKS_ENV)!;
    expect(id).toEqual({
      env: [
        { name: 'AWS_ROLE_ARN', value: ROLE },
        { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${TOKEN_DIR}/token` },
        { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' },
        { name: 'AWS_REGION', value: 'us-west-2' },
        { name: 'AWS_DEFAULT_REGION', value: 'us-west-2' },
      ],
      volume: {
        name: 'aws-iam-token',
        projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
      },
      volumeMount: { name: 'aws-iam-token', mountPath: TOKEN_DIR, readOnly: true },
    });
    validateInPod(id);
  });

  it('passes the session name, the STS endpoint and the leader’s STS endpoint choice on; regional by default', () => {
    const id = workloadIdentity({
      AWS_ROLE_ARN: ROLE,
      AWS_WEB_IDENTITY_TOKEN_FILE: '/tokens/aws/token',
      AWS_ROLE_SESSION_NAME: 'toil-leader',
      AWS_ENDPOINT_URL_STS: 'http://127.0.0.1:4566',
      AWS_STS_REGIONAL_ENDPOINTS: 'legacy',
      AWS_REGION: '',
    })!;
    expect(id.env).toEqual([
      { name: 'AWS_ROLE_ARN', value: ROLE },
      { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: '/tokens/aws/token' },
      { name: 'AWS_ROLE_SESSION_NAME', value: 'toil-leader' },
      { name: 'AWS_ENDPOINT_URL_STS', value: 'http://127.0.0.1:4566' },
      { name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'legacy' },
    ]);
    expect(id.volumeMount.mountPath).toBe('/tokens/aws');
    const regional = workloadIdentity({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/t/token' })!;
    expect(regional.env).toContainEqual({ name: 'AWS_STS_REGIONAL_ENDPOINTS', value: 'regional' });
  });

  it('with the leader’s pod: its token’s audience, expiry and path, and its service account', () => {
    const pod = leaderPod(
      {
        name: 'aws-iam-token',
        projected: { sources: [{ serviceAccountToken: { audience: 'irsa.example', expirationSeconds: 7200, path: 'token' } }] },
      },
      `${TOKEN_DIR}/`,
    );
    const id = workloadIdentity(EKS_ENV, pod)!;
    expect(id.volume).toEqual({
      name: 'aws-iam-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'irsa.example', expirationSeconds: 7200, path: 'token' } }] },
    });
    expect(id.volumeMount).toEqual({ name: 'aws-iam-token', mountPath: TOKEN_DIR, readOnly: true });
    expect(id.serviceAccountName).toBe('toil-leader');
    validateInPod(id);
  });

  it('a token deeper in the leader’s volume: mounted where the leader mounts it, the same path within', () => {
    const pod = leaderPod(
      { name: 'identity', projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', path: 'aws/token' } }] } },
      '/var/run/identity',
    );
    const id = workloadIdentity({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/identity/aws/token' }, pod)!;
    expect(id.volume.projected!.sources![0]!.serviceAccountToken).toEqual({ audience: 'sts.amazonaws.com', path: 'aws/token' });
    expect(id.volumeMount).toEqual({ name: 'aws-iam-token', mountPath: '/var/run/identity', readOnly: true });
    validateInPod(id);
  });

  it('a leader whose token file is not a projected token of its pod: the defaults', () => {
    const pod = leaderPod({ name: 'creds', secret: { secretName: 'aws-token' } }, TOKEN_DIR);
    const id = workloadIdentity(EKS_ENV, pod)!;
    expect(id.volume.projected!.sources![0]!.serviceAccountToken).toEqual({
      audience: 'sts.amazonaws.com',
      expirationSeconds: 86400,
      path: 'token',
    });
    expect(id.serviceAccountName).toBe('toil-leader');
  });

  it.each(['token', './secrets/token', '/token'])('refuses a token file that cannot be mounted the same way: %s', (file) => {
    const call = (): unknown => workloadIdentity({ AWS_ROLE_ARN: ROLE, AWS_WEB_IDENTITY_TOKEN_FILE: file });
    expect(call).toThrow(UsageError);
    expect(call).toThrow(
      `AWS_WEB_IDENTITY_TOKEN_FILE must be an absolute path in a directory other than / to be mounted in worker pods, not '${file}'`,
    );
  });
});

describe("worker Jobs carry the leader's web identity", () => {
  const settings = { workflowId: 'wf-1', locator: 'aws:us-west-2:demo', image: 'toil-ts:1.0' };

  it("the variables once each, the token volume and mount, under the leader's service account, with no API token", () => {
    const pod = leaderPod(
      {
        name: 'aws-iam-token',
        projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
      },
      TOKEN_DIR,
    );
    const o = workerJobOptions(settings, { pod }, EKS_ENV);
    const job = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: REQ }, { ...o, incarnation: 'abc123' });
    const spec = job.spec!.template.spec!;
    expect(spec.serviceAccountName).toBe('toil-leader');
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.volumes).toContainEqual({
      name: 'aws-iam-token',
      projected: { sources: [{ serviceAccountToken: { audience: 'sts.amazonaws.com', expirationSeconds: 86400, path: 'token' } }] },
    });
    const c = spec.containers[0]!;
    expect(c.volumeMounts).toContainEqual({ name: 'aws-iam-token', mountPath: TOKEN_DIR, readOnly: true });
    const names = c.env!.map((e) => e.name);
    expect(names.filter((n) => n === 'AWS_REGION')).toHaveLength(1);
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'AWS_ROLE_ARN', value: ROLE },
        { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', value: `${TOKEN_DIR}/token` },
        { name: 'AWS_ENDPOINT_URL_S3', value: 'https://s3.example' },
      ]),
    );
  });

  it('a worker service account named by the user wins; no web identity, no token volume', () => {
    const named = workerJobOptions({ ...settings, serviceAccountName: 'toil-workers' }, {}, EKS_ENV);
    expect(named.serviceAccountName).toBe('toil-workers');
    const none = workerJobOptions(settings, {}, { AWS_REGION: 'us-west-2' });
    expect(none.identity).toBeUndefined();
    expect(none.serviceAccountName).toBeUndefined();
  });
});
