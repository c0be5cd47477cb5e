/**
 * Web identity for worker pods (EKS IRSA and any cluster set up the same way): what a worker pod
 * needs to reach AWS as the leader does, decided from the leader's environment and, when the
 * leader runs in the cluster, its own pod. A pure function of those.
 *
 * What is decided, and why:
 * - The leader uses web identity when `AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE` are both
 *   set: that is when the AWS SDK's credential chain uses it (`fromTokenFile` needs both).
 *   Otherwise there is nothing to pass on (`undefined`): workers get credentials as they would
 *   anyway (a credentials secret, an instance role, …).
 * - The worker gets the same variables, so its SDK takes the same path: `AWS_ROLE_ARN`,
 *   `AWS_WEB_IDENTITY_TOKEN_FILE` (the same path), `AWS_ROLE_SESSION_NAME` and
 *   `AWS_ENDPOINT_URL_STS` when the leader has them, `AWS_STS_REGIONAL_ENDPOINTS` (the leader's,
 *   else `regional`, as the EKS webhook sets it), `AWS_REGION` and `AWS_DEFAULT_REGION` when set.
 * - The token comes from a projected `serviceAccountToken` volume named `aws-iam-token`, mounted
 *   read-only where the leader's is, so the file is at the same path. Its audience, expiry and
 *   path within the volume are the leader's own when the leader's pod is given and one of its
 *   containers mounts a projected token at that file (a cluster whose webhook or manifests use
 *   another audience keeps working); otherwise the EKS webhook's defaults: audience
 *   `sts.amazonaws.com`, 86400 s, the file's name, mounted at its directory.
 * - Set explicitly, not left to a webhook: on EKS the pod identity webhook injects the same into
 *   pods whose service account is annotated `eks.amazonaws.com/role-arn`, and leaves alone a pod
 *   that already has an `aws-iam-token` volume and containers that already have the variables
 *   and mount; elsewhere there is no webhook. Either way the worker gets one token volume.
 * - The token names the worker pod's own service account (`sub`
 *   `system:serviceaccount:<namespace>:<name>`), so the role's trust must admit it: workers
 *   should run under the service account the leader's token is for, which is reported as
 *   `serviceAccountName` when the leader's pod is given.
 *
 * A token file given as a relative path, or directly in `/`, cannot be mounted at the same place
 * in a worker pod: a UsageError names the variable.
 */
import path from 'node:path';
import type { V1EnvVar, V1Pod, V1ServiceAccountTokenProjection, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { UsageError } from '../errors.js';

export const TOKEN_VOLUME = 'aws-iam-token';
/** The EKS pod identity webhook's defaults. */
export const DEFAULT_TOKEN_AUDIENCE = 'sts.amazonaws.com';
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 86400;

export interface WorkloadIdentity {
  env: V1EnvVar[];
  volume: V1Volume;
  volumeMount: V1VolumeMount;
  /** the service account the leader's pod runs as (its token's subject), when its pod is given */
  serviceAccountName?: string;
}

/** Where the token volume goes and what it projects. */
interface TokenMount {
  mountPath: string;
  projection: V1ServiceAccountTokenProjection;
}

/** The leader's own projected token that backs `tokenFile`, if one of its containers mounts one there. */
function leaderTokenMount(pod: V1Pod, tokenFile: string): TokenMount | undefined {
  for (const container of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    for (const mount of container.volumeMounts ?? []) {
      const dir = mount.mountPath.replace(/\/+$/, '');
      if (mount.subPath || !tokenFile.startsWith(`${dir}/`)) continue;
      const within = tokenFile.slice(dir.length + 1);
      const volume = pod.spec?.volumes?.find((v) => v.name === mount.name);
      const projection = volume?.projected?.sources?.find((s) => s.serviceAccountToken?.path === within)?.serviceAccountToken;
      if (projection) return { mountPath: dir, projection: { ...projection } };
    }
  }
  return undefined;
}

function defaultTokenMount(tokenFile: string): TokenMount {
  return {
    mountPath: path.posix.dirname(tokenFile),
    projection: {
      audience: DEFAULT_TOKEN_AUDIENCE,
      expirationSeconds: DEFAULT_TOKEN_EXPIRATION_SECONDS,
      path: path.posix.basename(tokenFile),
    },
  };
}

function identityEnv(env: Record<string, string | undefined>): V1EnvVar[] {
  const vars: Record<string, string | undefined> = {
    AWS_ROLE_ARN: env['AWS_ROLE_ARN'],
    AWS_WEB_IDENTITY_TOKEN_FILE: env['AWS_WEB_IDENTITY_TOKEN_FILE'],
    AWS_ROLE_SESSION_NAME: env['AWS_ROLE_SESSION_NAME'],
    AWS_ENDPOINT_URL_STS: env['AWS_ENDPOINT_URL_STS'],
    AWS_STS_REGIONAL_ENDPOINTS: env['AWS_STS_REGIONAL_ENDPOINTS'] || 'regional',
    AWS_REGION: env['AWS_REGION'],
    AWS_DEFAULT_REGION: env['AWS_DEFAULT_REGION'],
  };
  return Object.entries(vars)
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .map(([name, value]) => ({ name, value }));
}

/**
 * What a worker pod needs to use the leader's web identity, or undefined when the leader uses
 * none. `env` is the leader's environment; `leaderPod` its own pod, when it runs in the cluster.
 */
export function workloadIdentity(env: Record<string, string | undefined>, leaderPod?: V1Pod): WorkloadIdentity | undefined {
  const roleArn = env['AWS_ROLE_ARN'];
  const tokenFile = env['AWS_WEB_IDENTITY_TOKEN_FILE'];
  if (!roleArn || !tokenFile) return undefined;
  if (!path.posix.isAbsolute(tokenFile) || path.posix.dirname(path.posix.normalize(tokenFile)) === '/')
    throw new UsageError(
      `AWS_WEB_IDENTITY_TOKEN_FILE must be an absolute path in a directory other than / to be mounted in worker pods, not '${tokenFile}'`,
      { variable: 'AWS_WEB_IDENTITY_TOKEN_FILE' },
    );
  const file = path.posix.normalize(tokenFile);
  const mount = (leaderPod && leaderTokenMount(leaderPod, file)) ?? defaultTokenMount(file);
  const serviceAccountName = leaderPod?.spec?.serviceAccountName;
  return {
    env: identityEnv(env),
    volume: { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: mount.projection }] } },
    volumeMount: { name: TOKEN_VOLUME, mountPath: mount.mountPath, readOnly: true },
    ...(serviceAccountName ? { serviceAccountName } : {}),
  };
}
