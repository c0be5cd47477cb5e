/**
 * Meeting the cluster at start: check that it answers and lets us list Jobs (a UsageError,
 * exit 2, before anything is created, if not), find the leader's own pod when it runs in one
 * (its image is the default worker image; its Job becomes the owner of the worker Jobs), and
 * settle the options every worker Job is built with. Also the workflow's slice of the API
 * that the other Kubernetes modules share: clients, rate limiter, namespace and selector.
 */
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1JobList, type V1Pod, type V1PodList } from '@kubernetes/client-node';
import { UsageError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { ClusterAccess } from './kubeConfig.js';
import { apiCall, apiErrorInfo } from './kubeRetry.js';
import { workflowSelector, type KubernetesJobOptions } from './kubernetesSpec.js';
import { RateLimiter } from './rateLimiter.js';
import { workloadIdentity, type WorkloadIdentity } from './workloadIdentity.js';

/** One workflow's view of the API: every request of the Kubernetes modules goes through it. */
export interface KubeScope {
  kc: KubeConfig;
  batch: BatchV1Api;
  core: CoreV1Api;
  limiter: RateLimiter;
  namespace: string;
  /** The label selector of the workflow's Jobs and pods. */
  selector: string;
  log: Logger;
}

export function kubeScope(
  access: ClusterAccess,
  args: { workflowId: string; log: Logger; qps?: number | undefined; burst?: number | undefined },
): KubeScope {
  return {
    kc: access.kc,
    batch: access.kc.makeApiClient(BatchV1Api),
    core: access.kc.makeApiClient(CoreV1Api),
    limiter: new RateLimiter(args.qps ?? 20, args.burst ?? 40),
    namespace: access.namespace,
    selector: workflowSelector(args.workflowId),
    log: args.log,
  };
}

/** The workflow's Jobs now in the cluster (one list request). */
export function listJobs(scope: KubeScope): Promise<V1JobList> {
  return apiCall('list Jobs', scope.limiter, () =>
    scope.batch.listNamespacedJob({ namespace: scope.namespace, labelSelector: scope.selector }),
  );
}

/** The workflow's pods now in the cluster (one list request); `selector`: a narrower label selector. */
export function listPods(scope: KubeScope, o: { what?: string; selector?: string } = {}): Promise<V1PodList> {
  return apiCall(o.what ?? 'list pods', scope.limiter, () =>
    scope.core.listNamespacedPod({ namespace: scope.namespace, labelSelector: o.selector ?? scope.selector }),
  );
}

/** Checks that the cluster answers and lets us list the workflow's Jobs (one request). */
export async function probeCluster(access: ClusterAccess, selector: string): Promise<void> {
  const server = access.kc.getCurrentCluster()?.server ?? '(in-cluster)';
  try {
    await access.kc.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: access.namespace, labelSelector: selector, limit: 1 });
  } catch (e) {
    const info = apiErrorInfo(e);
    throw new UsageError(
      info.status === undefined
        ? `cannot reach the Kubernetes API at ${server}: ${info.message}`
        : `the Kubernetes API at ${server} refused to list Jobs in namespace '${access.namespace}' (HTTP ${info.status}): ${info.message}`,
    );
  }
}

/** What the leader learns from its own pod. */
export interface LeaderSelf {
  /** The pod itself (its web identity's token volume is read from it). */
  pod?: V1Pod;
  image?: string;
  ownerJob?: { name: string; uid: string };
  /** Why the image could not be pinned to a digest (said once, at info level). */
  imageNote?: string;
}

/**
 * The image worker pods run, from the leader's own container: its image by the digest the
 * kubelet ran (`status.containerStatuses[].imageID`), so that a tag re-pushed during the run
 * changes nothing; the image as written when the kubelet reports no registry digest (an image
 * loaded onto the node rather than pulled reports only `sha256:<id>`), with a note saying so.
 */
export function pinnedImage(image: string, imageID: string | undefined): { image: string; note?: string } {
  const digest = /@(sha256:[0-9a-f]{64})$/.exec(imageID ?? '');
  if (digest) {
    const repo = image.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[^:/]+$/, '');
    return { image: `${repo}@${digest[1]!}` };
  }
  return {
    image,
    note: `worker pods run the leader's image '${image}' by its name: the kubelet reports no registry digest for it (${imageID || 'no imageID'})`,
  };
}

/**
 * Reads the leader's own pod (POD_NAME, else HOSTNAME) when it runs in the cluster: its image,
 * and the Job that owns it. Outside a pod, or when the pod cannot be read, knows nothing.
 */
export async function findLeaderSelf(access: ClusterAccess, env: NodeJS.ProcessEnv, log: Logger): Promise<LeaderSelf> {
  const podName = env['POD_NAME'] ?? env['HOSTNAME'];
  if (!access.inCluster || !podName) return {};
  try {
    const pod = await access.kc.makeApiClient(CoreV1Api).readNamespacedPod({ name: podName, namespace: access.namespace });
    const container = pod.spec?.containers?.[0];
    const status = pod.status?.containerStatuses?.find((c) => c.name === container?.name);
    const pinned = container?.image ? pinnedImage(container.image, status?.imageID) : undefined;
    const ref = pod.metadata?.ownerReferences?.find((r) => r.kind === 'Job');
    return {
      pod,
      ...(pinned ? { image: pinned.image, ...(pinned.note ? { imageNote: pinned.note } : {}) } : {}),
      ...(ref ? { ownerJob: { name: ref.name, uid: ref.uid } } : {}),
    };
  } catch (e) {
    log.warning(`cannot read the leader's own pod ${podName}: ${errorMessage(e)}; worker Jobs will not be owned by the leader's Job`);
    return {};
  }
}

/** Variables passed on to workers (never credentials: those come from the mounted secret). */
const PASS_ENV =
  /^(AWS_REGION|AWS_DEFAULT_REGION|AWS_ENDPOINT_URL|AWS_ENDPOINT_URL_S3|AWS_ENDPOINT_URL_SIMPLEDB|AWS_PROFILE|AWS_EC2_METADATA_DISABLED|TOIL_S3_[A-Z0-9_]+)$/;

/** The workflow's settings that shape its worker Jobs. */
export interface WorkerJobSettings {
  workflowId: string;
  locator: string;
  owner?: string;
  image?: string;
  hostPath?: string;
  awsSecretName?: string;
  serviceAccountName?: string;
}

/**
 * The environment worker pods get: the AWS variables that are set, the mounted credentials, and
 * the leader's web identity (workloadIdentity.ts), each variable once.
 */
function workerEnv(
  env: NodeJS.ProcessEnv,
  awsSecretName: string | undefined,
  identity: WorkloadIdentity | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && PASS_ENV.test(k)) out[k] = v;
  if (awsSecretName) {
    out['AWS_SHARED_CREDENTIALS_FILE'] = '/root/.aws/credentials';
    out['AWS_CONFIG_FILE'] = '/root/.aws/config';
  }
  for (const e of identity?.env ?? []) if (e.value !== undefined) out[e.name] = e.value;
  return out;
}

/** The options every worker Job is built with (but the leader's incarnation); a UsageError when there is no worker image. */
export function workerJobOptions(
  settings: WorkerJobSettings,
  self: LeaderSelf,
  env: NodeJS.ProcessEnv,
): Omit<KubernetesJobOptions, 'incarnation'> {
  const image = settings.image ?? self.image;
  if (!image) {
    throw new UsageError(
      "no worker image: set TOIL_APPLIANCE_SELF to the toil-ts image the worker pods should run (inside a pod it defaults to the leader's own image)",
    );
  }
  const command = env['TOIL_KUBERNETES_WORKER_COMMAND'];
  const identity = workloadIdentity(env, self.pod);
  // Workers use the leader's web identity under the service account its token names, unless told another.
  const serviceAccountName = settings.serviceAccountName ?? identity?.serviceAccountName;
  return {
    owner: settings.owner ?? env['USER'] ?? 'toil',
    workflowId: settings.workflowId,
    image,
    workerCommand: command ? command.split(' ').filter((s) => s !== '') : ['toil', 'worker'],
    locator: settings.locator,
    ...(settings.hostPath ? { hostPath: settings.hostPath } : {}),
    ...(settings.awsSecretName ? { awsSecretName: settings.awsSecretName } : {}),
    ...(serviceAccountName ? { serviceAccountName } : {}),
    ...(self.ownerJob ? { ownerJob: self.ownerJob } : {}),
    ...(identity ? { identity: { volume: identity.volume, volumeMount: identity.volumeMount } } : {}),
    env: workerEnv(env, settings.awsSecretName, identity),
  };
}
