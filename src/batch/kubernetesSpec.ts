/**
 * The batch/v1 Job for one batch job: a pure function of the job's requirements and the
 * workflow's Kubernetes options, so every spec it can produce is unit-tested and validated
 * against the official schema.
 */
import type {
  V1Container,
  V1Job,
  V1PodSecurityContext,
  V1ResourceRequirements,
  V1SecurityContext,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1OwnerReference,
  V1Toleration,
  V1Volume,
  V1VolumeMount,
  V1EnvVar,
} from '@kubernetes/client-node';
import { gpuCount } from '../job/requirements.js';
import type { ResolvedRequirements } from '../job/types.js';

export const MANAGED_BY = 'toil-ts';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_OWNER = 'toil-ts.io/owner';
export const LABEL_WORKFLOW = 'toil-ts.io/workflow';
export const LABEL_BATCH_ID = 'toil-ts.io/batch-id';
export const ANNOTATION_JOB_ID = 'toil-ts.io/job-id';
export const ANNOTATION_JOB_NAME = 'toil-ts.io/job-name';
export const CONTAINER_NAME = 'worker';
export const CACHE_MOUNT = '/var/lib/toil';
export const AWS_MOUNT = '/root/.aws';
export const TMP_MOUNT = '/tmp';

/**
 * The user worker pods run as: the toil-ts image's own non-root user (`node`, 1000:1000, as in
 * the official Node images). Its group owns the pod's volumes (fsGroup), so a secret or
 * emptyDir is readable and writable by it.
 */
export const WORKER_UID = 1000;

/**
 * What a worker pod may write to its node's root disk when its files live on a host path:
 * its log and /tmp. The kubelet does not count a host path's usage against
 * `ephemeral-storage`, so asking for the job's whole `disk` there would reserve room the job
 * does not use and could keep the pod off nodes with room on the host path; the job's `disk`
 * is held on the node by the node cache's reservation instead (see jobFileStore.ts).
 */
export const HOST_PATH_EPHEMERAL_BYTES = 2 ** 30;

/** Node labels and taints by which clouds mark spot/preemptible capacity. */
export const SPOT_NODE_LABELS: ReadonlyArray<{ key: string; values: string[] }> = [
  { key: 'eks.amazonaws.com/capacityType', values: ['SPOT'] },
  { key: 'karpenter.sh/capacity-type', values: ['spot'] },
  { key: 'cloud.google.com/gke-spot', values: ['true'] },
  { key: 'cloud.google.com/gke-preemptible', values: ['true'] },
];
/**
 * Node labels whose value names the node's GPU model: GKE's (e.g. `nvidia-tesla-t4`, `nvidia-l4`)
 * and NVIDIA GPU feature discovery's (e.g. `Tesla-T4`, `NVIDIA-A100-SXM4-40GB`), which the NVIDIA
 * GPU operator sets on EKS and elsewhere. The providers' values differ, so a job names the model
 * as its cluster's label says it, and the node affinity has one term per label.
 */
export const GPU_MODEL_NODE_LABELS: readonly string[] = ['cloud.google.com/gke-accelerator', 'nvidia.com/gpu.product'];

/** Node affinity terms (ORed) for spot or non-spot capacity, each a list of ANDed expressions. */
function capacityTerms(preemptible: boolean): V1NodeSelectorRequirement[][] {
  if (preemptible) return SPOT_NODE_LABELS.map((l) => [{ key: l.key, operator: 'In', values: l.values }]);
  return [SPOT_NODE_LABELS.map((l) => ({ key: l.key, operator: 'NotIn', values: l.values }))];
}

/**
 * The required node affinity terms: the capacity terms, and with a GPU model each of them once
 * per model label, so that every term asks for the model as well as for the capacity type.
 */
export function nodeSelectorTerms(preemptible: boolean, gpuModel: string | undefined): V1NodeSelectorTerm[] {
  const capacity = capacityTerms(preemptible);
  if (gpuModel === undefined) return capacity.map((matchExpressions) => ({ matchExpressions }));
  return GPU_MODEL_NODE_LABELS.flatMap((key) =>
    capacity.map((c) => ({ matchExpressions: [{ key, operator: 'In', values: [gpuModel] }, ...c] })),
  );
}

/** The one GPU model a job's accelerators name, if they name exactly one. */
function singleGpuModel(r: ResolvedRequirements): string | undefined {
  const models = new Set(r.accelerators.map((a) => a.model).filter((m): m is string => m !== undefined));
  return models.size === 1 ? [...models][0] : undefined;
}

export const SPOT_TOLERATIONS: V1Toleration[] = [
  { key: 'cloud.google.com/gke-spot', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
  { key: 'cloud.google.com/gke-preemptible', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
  { key: 'eks.amazonaws.com/capacityType', operator: 'Equal', value: 'SPOT', effect: 'NoSchedule' },
  { key: 'karpenter.sh/capacity-type', operator: 'Equal', value: 'spot', effect: 'NoSchedule' },
];

export interface KubernetesJobOptions {
  /** Owner name (TOIL_KUBERNETES_OWNER), put in names and labels. */
  owner: string;
  workflowId: string;
  /**
   * This leader's incarnation (a few random [a-z0-9]), in every Job name and batch id label, so
   * that no two leaders of a workflow (a restart, a leader that died and one that took over)
   * ever share one: a pod of an earlier leader is never taken for a new job's pod.
   */
  incarnation: string;
  /** Worker image (TOIL_APPLIANCE_SELF, or the leader's own image). */
  image: string;
  /** The command that runs a worker, before `<jobStore> <jobId>`. */
  workerCommand: string[];
  locator: string;
  /** Host path for the node-wide cache (TOIL_KUBERNETES_HOST_PATH); an emptyDir when unset. */
  hostPath?: string;
  /** Secret holding the AWS credentials file (TOIL_AWS_SECRET_NAME), mounted at /root/.aws. */
  awsSecretName?: string;
  serviceAccountName?: string;
  /** The leader's own Job, when it runs in the cluster: worker Jobs are its dependents. */
  ownerJob?: { name: string; uid: string };
  /** Environment passed to workers (AWS_REGION, AWS_ENDPOINT_URL_S3, …). */
  env?: Record<string, string>;
  /** The leader's web identity's token, projected into worker pods where the leader has it (workloadIdentity.ts). */
  identity?: { volume: V1Volume; volumeMount: V1VolumeMount };
  ttlSecondsAfterFinished?: number;
}

/** A DNS-1123 label from free text: lowercase letters, digits and '-'. */
export function dnsLabel(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+/, '')
    .slice(0, max)
    .replace(/-+$/, '');
  return s === '' ? 'x' : s;
}

/** A label value: ≤ 63 characters of [A-Za-z0-9._-], alphanumeric at both ends. */
export function labelValue(text: string): string {
  const s = text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return s === '' ? 'x' : s;
}

/** The batch id label of a batch job: `<incarnation>-<counter>`, unique across the workflow's leaders. */
export function batchLabel(incarnation: string, counter: number): string {
  return `${dnsLabel(incarnation, 16)}-${counter}`;
}

/**
 * The Job name: `toil-<owner>-<workflow prefix>-<batch label>`, at most 63 characters (the Job
 * controller puts it in a label); the owner is shortened to fit.
 */
export function jobName(owner: string, workflowId: string, batch: string): string {
  const tail = `-${dnsLabel(workflowId.replace(/-/g, ''), 8)}-${batch}`;
  return `toil-${dnsLabel(owner, 63 - 5 - tail.length)}${tail}`;
}

/**
 * Image caches of container tools, on the node's shared host path so that the pods of a node
 * share them (Singularity's and MiniWDL's have no locking of their own: fill them through
 * `ctx.fileStore.onceOnNode`).
 */
export const TOOL_CACHE_ENV: Readonly<Record<string, string>> = {
  SINGULARITY_CACHEDIR: `${CACHE_MOUNT}/singularity`,
  MINIWDL__SINGULARITY__IMAGE_CACHE: `${CACHE_MOUNT}/miniwdl`,
};

function toolCacheEnv(): V1EnvVar[] {
  return Object.entries(TOOL_CACHE_ENV).map(([name, value]) => ({ name, value }));
}

/** Kubernetes quantity strings. */
function cpuQuantity(cores: number): string {
  const milli = Math.max(1, Math.ceil(cores * 1000));
  return milli % 1000 === 0 ? String(milli / 1000) : `${milli}m`;
}

export function workflowSelector(workflowId: string): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_WORKFLOW}=${labelValue(workflowId)}`;
}

/**
 * Least privilege, as Pod Security's `restricted` level asks: not root, no privilege
 * escalation, no capabilities, the runtime's default seccomp profile, a read-only root file
 * system (the job writes to /tmp, an emptyDir, and to the cache volume), and no API token.
 */
export const WORKER_POD_SECURITY: V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: WORKER_UID,
  runAsGroup: WORKER_UID,
  fsGroup: WORKER_UID,
  seccompProfile: { type: 'RuntimeDefault' },
};

export const WORKER_CONTAINER_SECURITY: V1SecurityContext = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
};

/**
 * With a host path, an init container gives the cache directory to the worker user once (a host
 * path is created root-owned by the kubelet, and fsGroup does not apply to it): it runs as root
 * with only the capability to change owners (CHOWN), and only changes what is not the worker's yet
 * (a cache filled by root-run workers of an earlier version is handed over whole, once). The
 * host path already needs the `privileged` Pod Security level, which allows this.
 */
function cacheOwnerContainer(image: string): V1Container {
  const uid = String(WORKER_UID);
  const script = `[ "$(stat -c %u:%g ${CACHE_MOUNT})" = "${uid}:${uid}" ] || chown -R ${uid}:${uid} ${CACHE_MOUNT}`;
  return {
    name: 'cache-owner',
    image,
    command: ['sh', '-c', script],
    securityContext: {
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['CHOWN'] },
      readOnlyRootFilesystem: true,
    },
    resources: { requests: { cpu: '10m', memory: '16Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
    volumeMounts: [{ name: 'toil-cache', mountPath: CACHE_MOUNT }],
  };
}

/** Requests and limits (equal: the pod's QoS class is Guaranteed). */
function containerResources(r: ResolvedRequirements, hostPath: boolean): V1ResourceRequirements {
  const resources: Record<string, string> = {
    cpu: cpuQuantity(r.cores),
    memory: String(r.memory),
    'ephemeral-storage': String(hostPath ? Math.min(r.disk, HOST_PATH_EPHEMERAL_BYTES) : r.disk),
  };
  const gpus = gpuCount(r);
  if (gpus > 0) resources['nvidia.com/gpu'] = String(gpus);
  return { requests: resources, limits: { ...resources } };
}

function volumesOf(o: KubernetesJobOptions): { volumes: V1Volume[]; mounts: V1VolumeMount[] } {
  const volumes: V1Volume[] = [
    o.hostPath ? { name: 'toil-cache', hostPath: { path: o.hostPath, type: 'DirectoryOrCreate' } } : { name: 'toil-cache', emptyDir: {} },
    { name: 'tmp', emptyDir: {} },
  ];
  const mounts: V1VolumeMount[] = [
    { name: 'toil-cache', mountPath: CACHE_MOUNT },
    { name: 'tmp', mountPath: TMP_MOUNT },
  ];
  if (o.awsSecretName) {
    volumes.push({ name: 'aws-credentials', secret: { secretName: o.awsSecretName } });
    mounts.push({ name: 'aws-credentials', mountPath: AWS_MOUNT, readOnly: true });
  }
  if (o.identity) {
    volumes.push(o.identity.volume);
    mounts.push(o.identity.volumeMount);
  }
  return { volumes, mounts };
}

/**
 * Builds the Job for a batch job. An executor's (`executor`: its name) runs `toil worker
 * --executor`, and has no rule that lets the Job controller replace a disrupted pod: an
 * executor's jobs go with its pod, and the leader must hear of it to run them again.
 */
export function buildJob(
  args: { batchJobId: number; jobId: string; jobName: string; requirements: ResolvedRequirements; executor?: string },
  o: KubernetesJobOptions,
): V1Job {
  const r = args.requirements;
  const batch = batchLabel(o.incarnation, args.batchJobId);
  const name = jobName(o.owner, o.workflowId, batch);
  const labels: Record<string, string> = {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_OWNER]: labelValue(o.owner),
    [LABEL_WORKFLOW]: labelValue(o.workflowId),
    [LABEL_BATCH_ID]: batch,
  };
  const annotations = { [ANNOTATION_JOB_ID]: args.jobId, [ANNOTATION_JOB_NAME]: args.jobName };
  const { volumes, mounts } = volumesOf(o);
  const env: V1EnvVar[] = [
    { name: 'TOIL_WORKDIR', value: `${CACHE_MOUNT}/work` },
    { name: 'TOIL_WORKFLOW_ID', value: o.workflowId },
    { name: 'TOIL_JOB_ID', value: args.jobId },
    ...(o.hostPath ? toolCacheEnv() : []),
    ...Object.entries(o.env ?? {}).map(([k, v]) => ({ name: k, value: v })),
  ];
  // No blockOwnerDeletion: setting it needs `update` on the owner's jobs/finalizers where the
  // OwnerReferencesPermissionEnforcement admission plugin is on, and it only matters to a
  // foreground deletion of the leader Job; garbage collection removes the workers either way.
  const ownerReferences: V1OwnerReference[] | undefined = o.ownerJob
    ? [{ apiVersion: 'batch/v1', kind: 'Job', name: o.ownerJob.name, uid: o.ownerJob.uid, controller: false }]
    : undefined;

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, labels, annotations, ...(ownerReferences ? { ownerReferences } : {}) },
    spec: {
      backoffLimit: 0,
      ttlSecondsAfterFinished: o.ttlSecondsAfterFinished ?? 600,
      // A pod taken away (spot reclaim, eviction, node drain) is not the job's fault: the Job
      // controller makes a new pod without counting it against backoffLimit.
      ...(args.executor === undefined
        ? { podFailurePolicy: { rules: [{ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] }] } }
        : {}),
      template: {
        metadata: { labels, annotations },
        spec: {
          restartPolicy: 'Never',
          ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
          automountServiceAccountToken: false,
          securityContext: WORKER_POD_SECURITY,
          ...(o.hostPath ? { initContainers: [cacheOwnerContainer(o.image)] } : {}),
          containers: [
            {
              name: CONTAINER_NAME,
              image: o.image,
              // Arguments, not a command: the image's entrypoint (tini) stays PID 1 and passes
              // SIGTERM on to the worker and the job's own processes when the pod is deleted.
              args:
                args.executor === undefined
                  ? [...o.workerCommand, o.locator, args.jobId]
                  : [...o.workerCommand, o.locator, '--executor', args.executor],
              env,
              resources: containerResources(r, o.hostPath !== undefined),
              securityContext: WORKER_CONTAINER_SECURITY,
              volumeMounts: mounts,
            },
          ],
          volumes,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: nodeSelectorTerms(r.preemptible, singleGpuModel(r)) },
            },
          },
          ...(r.preemptible ? { tolerations: SPOT_TOLERATIONS } : {}),
        },
      },
    },
  };
}
