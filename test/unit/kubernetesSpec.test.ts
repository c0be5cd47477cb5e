/** The worker Job spec and the reading of pod endings: pure functions, schema-validated. */
import { describe, expect, it } from '@jest/globals';
import type { V1Job, V1NodeSelectorTerm, V1Pod } from '@kubernetes/client-node';
import { Job as JobModel } from 'kubernetes-models/batch/v1';
import {
  buildJob,
  HOST_PATH_EPHEMERAL_BYTES,
  dnsLabel,
  batchLabel,
  jobName,
  labelValue,
  GPU_MODEL_NODE_LABELS,
  SPOT_NODE_LABELS,
  workflowSelector,
  type KubernetesJobOptions,
} from '../../src/batch/kubernetesSpec.js';
import { imageFailure, jobVerdict, podVerdict, unschedulableSince } from '../../src/batch/podOutcome.js';
import { RateLimiter } from '../../src/batch/rateLimiter.js';
import { apiErrorInfo } from '../../src/batch/kubeRetry.js';
import type { ResolvedRequirements } from '../../src/job/types.js';

const base: KubernetesJobOptions = {
  owner: 'demouser',
  workflowId: '30ddc435-c2a8-4079-8bf5-1b3419d1ff17',
  incarnation: 'k3x9a2',
  image: 'toil-ts:1.0',
  workerCommand: ['toil', 'worker'],
  locator: 'aws:us-west-2:demouser-toil-test-jobstore',
};
const req: ResolvedRequirements = { cores: 2, memory: 2 * 2 ** 30, disk: 3e9, accelerators: [], preemptible: false };

function validate(job: V1Job): void {
  new JobModel(job as never).validate();
}

describe('worker Job spec', () => {
  const variants: Array<[string, Partial<KubernetesJobOptions>, Partial<ResolvedRequirements>]> = [
    ['defaults', {}, {}],
    [
      'hostPath, secret, service account, owner Job',
      {
        hostPath: '/data/scratch',
        awsSecretName: 's3-credentials',
        serviceAccountName: 'toil-workflow-svc',
        ownerJob: { name: 'demouser-toil-test', uid: '6f1d3c8e-1111-2222-3333-444455556666' },
      },
      {},
    ],
    [
      'preemptible with GPUs',
      {},
      { preemptible: true, accelerators: [{ count: 2, kind: 'gpu', model: 'nvidia-tesla-t4', brand: 'nvidia' }], cores: 0.5 },
    ],
    ['a GPU model, not preemptible', {}, { accelerators: [{ count: 1, kind: 'gpu', model: 'NVIDIA-A100-SXM4-40GB', brand: 'NVIDIA' }] }],
    ['a very long owner', { owner: 'A'.repeat(100) + ' Smith' }, {}],
  ];
  it.each(variants)('validates against the official schema: %s', (_name, o, r) => {
    const job = buildJob({ batchJobId: 123456, jobId: 'hello-abc', jobName: 'hello', requirements: { ...req, ...r } }, { ...base, ...o });
    validate(job);
    expect(job.metadata!.name!.length).toBeLessThanOrEqual(63);
    expect(job.metadata!.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    for (const v of Object.values(job.metadata!.labels!)) expect(v.length).toBeLessThanOrEqual(63);
  });

  it("an executor's Job runs `toil worker <store> --executor <name>`, with its labels and owner, and no rule that replaces a disrupted pod", () => {
    const job = buildJob(
      { batchJobId: 3, jobId: 'executor-ab12x1', jobName: 'executor', requirements: req, executor: 'ab12x1' },
      { ...base, ownerJob: { name: 'leader', uid: 'u-1' } },
    );
    expect(job.spec!.template.spec!.containers[0]!.args).toEqual(['toil', 'worker', base.locator, '--executor', 'ab12x1']);
    expect(job.metadata!.labels).toMatchObject({ 'toil-ts.io/workflow': base.workflowId, 'toil-ts.io/batch-id': 'k3x9a2-3' });
    expect(job.metadata!.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: 'leader', uid: 'u-1', controller: false }]);
    expect(job.spec!.backoffLimit).toBe(0);
    // its jobs go with its pod: the Job must fail so the leader hears of it
    expect(job.spec!.podFailurePolicy).toBeUndefined();
  });

  it('has the contract: labels, backoffLimit 0, Never, TTL, resources, mounts, disruption policy', () => {
    const job = buildJob(
      { batchJobId: 7, jobId: 'hello-abc', jobName: 'hello', requirements: { ...req, accelerators: [{ count: 1, kind: 'gpu' }] } },
      {
        ...base,
        hostPath: '/data/scratch',
        awsSecretName: 's3-credentials',
        serviceAccountName: 'toil-workflow-svc',
        ownerJob: { name: 'leader', uid: 'u-1' },
      },
    );
    expect(job.metadata!.name).toBe('toil-demouser-30ddc435-k3x9a2-7');
    expect(job.metadata!.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'toil-ts',
      'toil-ts.io/owner': 'demouser',
      'toil-ts.io/workflow': base.workflowId,
      'toil-ts.io/batch-id': 'k3x9a2-7',
    });
    // another incarnation of the leader: another name and batch id for the same counter
    const next = buildJob({ batchJobId: 7, jobId: 'hello-abc', jobName: 'hello', requirements: req }, { ...base, incarnation: 'p0q1r2' });
    expect(next.metadata!.name).toBe('toil-demouser-30ddc435-p0q1r2-7');
    expect(next.spec!.template.metadata!.labels!['toil-ts.io/batch-id']).toBe('p0q1r2-7');
    expect(job.metadata!.ownerReferences).toEqual([{ apiVersion: 'batch/v1', kind: 'Job', name: 'leader', uid: 'u-1', controller: false }]);
    const spec = job.spec!;
    expect(spec.backoffLimit).toBe(0);
    expect(spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(spec.podFailurePolicy!.rules[0]).toMatchObject({ action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] });
    const pod = spec.template.spec!;
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.serviceAccountName).toBe('toil-workflow-svc');
    const c = pod.containers[0]!;
    // arguments to the image's entrypoint (tini), which passes SIGTERM on
    expect(c.command).toBeUndefined();
    expect(c.args).toEqual(['toil', 'worker', base.locator, 'hello-abc']);
    // with a host path, the job's disk is on it: the pod asks the root disk for its log and /tmp only
    expect(c.resources!.requests).toEqual({
      cpu: '2',
      memory: String(2 * 2 ** 30),
      'ephemeral-storage': String(HOST_PATH_EPHEMERAL_BYTES),
      'nvidia.com/gpu': '1',
    });
    expect(c.resources!.limits).toEqual(c.resources!.requests);
    expect(pod.volumes).toEqual([
      { name: 'toil-cache', hostPath: { path: '/data/scratch', type: 'DirectoryOrCreate' } },
      { name: 'tmp', emptyDir: {} },
      { name: 'aws-credentials', secret: { secretName: 's3-credentials' } },
    ]);
    expect(c.volumeMounts).toEqual([
      { name: 'toil-cache', mountPath: '/var/lib/toil' },
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'aws-credentials', mountPath: '/root/.aws', readOnly: true },
    ]);
    // the host path is given to the worker user by an init container with only CHOWN (and the right to look inside)
    const init = pod.initContainers![0]!;
    expect(init.securityContext).toMatchObject({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'], add: ['CHOWN'] },
    });
    expect(init.volumeMounts).toEqual([{ name: 'toil-cache', mountPath: '/var/lib/toil' }]);
    expect(spec.template.metadata!.labels!['toil-ts.io/batch-id']).toBe('k3x9a2-7');
    // Tool image caches live on the node's host path, next to the work directory.
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'TOIL_WORKDIR', value: '/var/lib/toil/work' },
        { name: 'SINGULARITY_CACHEDIR', value: '/var/lib/toil/singularity' },
        { name: 'MINIWDL__SINGULARITY__IMAGE_CACHE', value: '/var/lib/toil/miniwdl' },
      ]),
    );
  });

  it('runs the worker with least privilege: not root, no escalation, no capabilities, RuntimeDefault seccomp, a read-only root, no API token', () => {
    const pod = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: req }, base).spec!.template.spec!;
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 1000,
      runAsGroup: 1000,
      fsGroup: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
    });
    // without a host path: no init container, and the job's disk is asked of the node's root disk
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers[0]!.resources!.limits!['ephemeral-storage']).toBe(String(req.disk));
    expect(pod.volumes!.every((v) => v.hostPath === undefined)).toBe(true);
  });

  it('points tool image caches at the host path only when there is one', () => {
    const env = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: req }, base).spec!.template.spec!.containers[0]!.env!;
    expect(env.map((e) => e.name)).not.toContain('SINGULARITY_CACHEDIR');
    expect(env.map((e) => e.name)).not.toContain('MINIWDL__SINGULARITY__IMAGE_CACHE');
  });

  it('puts preemptible jobs on spot nodes and keeps the others off them', () => {
    const spot = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: { ...req, preemptible: true } }, base).spec!.template
      .spec!;
    const terms = spot.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(terms).toHaveLength(SPOT_NODE_LABELS.length);
    expect(terms.map((t) => t.matchExpressions![0]!.operator)).toEqual(SPOT_NODE_LABELS.map(() => 'In'));
    expect(spot.tolerations!.map((t) => t.key)).toContain('cloud.google.com/gke-spot');
    const normal = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: req }, base).spec!.template.spec!;
    const nt = normal.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(nt).toHaveLength(1);
    expect(nt[0]!.matchExpressions!.every((e) => e.operator === 'NotIn')).toBe(true);
    expect(normal.tolerations).toBeUndefined();
  });

  describe('GPU models', () => {
    // Required node affinity as the scheduler reads it: terms ORed, expressions in a term ANDed.
    function admits(terms: V1NodeSelectorTerm[], labels: Record<string, string>): boolean {
      return terms.some((t) =>
        t.matchExpressions!.every((e) => {
          const v = labels[e.key];
          if (e.operator === 'In') return v !== undefined && e.values!.includes(v);
          if (e.operator === 'NotIn') return v === undefined || !e.values!.includes(v);
          throw new Error(`unexpected operator ${e.operator}`);
        }),
      );
    }
    const nodes: Record<string, Record<string, string>> = {
      'gke-t4-spot': { 'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4', 'cloud.google.com/gke-spot': 'true' },
      'gke-t4': { 'cloud.google.com/gke-accelerator': 'nvidia-tesla-t4' },
      'gke-l4': { 'cloud.google.com/gke-accelerator': 'nvidia-l4' },
      'eks-t4-spot': { 'eks.amazonaws.com/capacityType': 'SPOT', 'nvidia.com/gpu.product': 'Tesla-T4' },
      'eks-t4': { 'eks.amazonaws.com/capacityType': 'ON_DEMAND', 'nvidia.com/gpu.product': 'Tesla-T4' },
      'karpenter-t4-spot': { 'karpenter.sh/capacity-type': 'spot', 'nvidia.com/gpu.product': 'Tesla-T4' },
      'cpu-only': {},
    };
    function placed(model: string, preemptible: boolean): string[] {
      const r = { ...req, preemptible, accelerators: [{ count: 1, kind: 'gpu' as const, model }] };
      const job = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: r }, base);
      validate(job);
      const spec = job.spec!.template.spec!;
      expect(spec.nodeSelector).toBeUndefined();
      const terms = spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
      return Object.keys(nodes).filter((n) => admits(terms, nodes[n]!));
    }

    it("selects the model by GKE's label, on spot capacity or off it", () => {
      expect(placed('nvidia-tesla-t4', true)).toEqual(['gke-t4-spot']);
      expect(placed('nvidia-tesla-t4', false)).toEqual(['gke-t4']);
      expect(placed('nvidia-l4', false)).toEqual(['gke-l4']);
    });
    it("selects the model by NVIDIA GPU feature discovery's label, on spot capacity or off it", () => {
      expect(placed('Tesla-T4', true)).toEqual(['eks-t4-spot', 'karpenter-t4-spot']);
      expect(placed('Tesla-T4', false)).toEqual(['eks-t4']);
    });
    it('has one term per model label and capacity term, each with the model and the capacity expressions', () => {
      const r = { ...req, preemptible: true, accelerators: [{ count: 2, kind: 'gpu' as const, model: 'nvidia-l4' }] };
      const spec = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: r }, base).spec!.template.spec!;
      const terms = spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
      expect(terms).toHaveLength(GPU_MODEL_NODE_LABELS.length * SPOT_NODE_LABELS.length);
      for (const t of terms) {
        expect(t.matchExpressions).toHaveLength(2);
        expect(GPU_MODEL_NODE_LABELS).toContain(t.matchExpressions![0]!.key);
        expect(t.matchExpressions![0]!.values).toEqual(['nvidia-l4']);
      }
    });
    it('asks for no model when the job names none or several', () => {
      const several = {
        ...req,
        accelerators: [
          { count: 1, kind: 'gpu' as const, model: 'nvidia-l4' },
          { count: 1, kind: 'gpu' as const, model: 'Tesla-T4' },
        ],
      };
      for (const r of [{ ...req, accelerators: [{ count: 1, kind: 'gpu' as const }] }, several]) {
        const spec = buildJob({ batchJobId: 1, jobId: 'j', jobName: 'j', requirements: r }, base).spec!.template.spec!;
        const terms = spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
        expect(terms.flatMap((t) => t.matchExpressions!.map((e) => e.key))).not.toEqual(expect.arrayContaining([GPU_MODEL_NODE_LABELS[0]]));
        expect(spec.nodeSelector).toBeUndefined();
      }
    });
  });

  it('makes names and label values Kubernetes accepts', () => {
    expect(dnsLabel('Demo_User!', 63)).toBe('demo-user');
    expect(labelValue('-x'.repeat(50))).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    expect(jobName('x'.repeat(80), 'abc', batchLabel('k3x9a2', 99_999_999)).length).toBeLessThanOrEqual(63);
    expect(workflowSelector('wf-1')).toBe('app.kubernetes.io/managed-by=toil-ts,toil-ts.io/workflow=wf-1');
  });
});

function pod(status: V1Pod['status'], extra: Partial<V1Pod> = {}): V1Pod {
  return {
    metadata: { name: 'p' },
    spec: { nodeName: 'node-1', containers: [{ name: 'worker', image: 'img', resources: { limits: { memory: '1000' } } }] },
    status,
    ...extra,
  };
}

describe('pod endings', () => {
  it('reads success, exit codes, OOM kills, disruption and deadlines', () => {
    expect(
      podVerdict(
        pod({
          phase: 'Succeeded',
          containerStatuses: [
            { name: 'worker', image: 'img', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0 } } },
          ],
        }),
      ).outcome,
    ).toBe('succeeded');
    const failed = podVerdict(
      pod({
        phase: 'Failed',
        containerStatuses: [
          {
            name: 'worker',
            image: 'img',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 3, reason: 'Error' } },
          },
        ],
      }),
    );
    expect(failed).toMatchObject({ outcome: 'failed', exitCode: 3, countsAsAttempt: true });
    expect(failed.message).toBe('the worker exited with code 3');
    const oom = podVerdict(
      pod({
        phase: 'Failed',
        containerStatuses: [
          {
            name: 'worker',
            image: 'img',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 137, reason: 'OOMKilled' } },
          },
        ],
      }),
    );
    expect(oom.outcome).toBe('memory');
    expect(oom.message).toMatch(/out of memory.*limit of 1000 bytes/);
    const evicted = podVerdict(
      pod({
        phase: 'Failed',
        conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'TerminationByKubelet', message: 'spot reclaim' }],
      }),
    );
    expect(evicted).toMatchObject({ outcome: 'preempted', countsAsAttempt: false });
    expect(podVerdict(pod({ phase: 'Failed', reason: 'DeadlineExceeded' })).outcome).toBe('deadline');
  });
  it('fails fast on an image that can never be pulled, naming the image; not on a transient pull error', () => {
    const waiting = (reason: string, message: string) =>
      pod({
        phase: 'Pending',
        containerStatuses: [
          { name: 'worker', image: 'nope:1', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } } },
        ],
      });
    const notFound = 'Failed to pull image "nope:1": rpc error: code = NotFound desc = failed to resolve reference "nope:1": not found';
    const unavailable = 'Failed to pull image "nope:1": unexpected status from HEAD request: 503 Service Unavailable';
    const backOff = waiting('ImagePullBackOff', 'Back-off pulling image "nope:1"');
    expect(imageFailure(waiting('ErrImagePull', unavailable))).toBeUndefined();
    expect(imageFailure(backOff, unavailable)).toBeUndefined();
    const v = imageFailure(backOff, notFound);
    expect(v).toMatchObject({ outcome: 'image', retryable: false });
    expect(v!.message).toBe(`cannot pull the worker image 'nope:1': ImagePullBackOff (${notFound})`);
    expect(imageFailure(waiting('ErrImagePull', notFound))!.message).toBe(
      `cannot pull the worker image 'nope:1': ErrImagePull (${notFound})`,
    );
    expect(imageFailure(waiting('InvalidImageName', 'couldn\'t parse image name "Nope:1"'))).toMatchObject({
      outcome: 'image',
      retryable: false,
    });
    expect(imageFailure(waiting('ErrImageNeverPull', 'Container image "nope:1" is not present with pull policy of Never'))).toMatchObject({
      retryable: false,
    });
  });
  it('notices unschedulable pods with the scheduler message', () => {
    const p = pod(
      {
        phase: 'Pending',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/2 nodes are available: 2 Insufficient cpu.',
            lastTransitionTime: new Date(1000),
          },
        ],
      },
      {},
    );
    delete p.spec!.nodeName;
    expect(unschedulableSince(p)).toEqual({ since: 1000, message: '0/2 nodes are available: 2 Insufficient cpu.' });
  });
  it('reads Job conditions', () => {
    expect(jobVerdict({ status: { conditions: [{ type: 'Complete', status: 'True' }] } })?.outcome).toBe('succeeded');
    expect(jobVerdict({ status: { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }] } })?.outcome).toBe(
      'deadline',
    );
    expect(jobVerdict({ status: { active: 1 } })).toBeUndefined();
  });
});

describe('API helpers', () => {
  it('rate-limits to qps after the burst', async () => {
    const limiter = new RateLimiter(50, 5);
    const t0 = Date.now();
    for (let i = 0; i < 15; i++) await limiter.take();
    // 5 free, then 10 at 50/s: about 200 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(170);
  });
  it('reads ApiException-like errors, with Retry-After', () => {
    expect(apiErrorInfo({ code: 429, body: '{"message":"slow down"}', headers: { 'retry-after': '2' }, message: 'HTTP 429' })).toEqual({
      status: 429,
      message: 'slow down',
      retryAfterMs: 2000,
    });
    expect(apiErrorInfo(new Error('connect ECONNREFUSED')).status).toBeUndefined();
  });
});
