/**
 * The leader as a Kubernetes Job inside the cluster: in-cluster configuration under a service
 * account whose Role grants only what the leader needs, worker image defaulting to the
 * leader's own, worker Jobs and executors owned by the leader's Job (deleting it removes them).
 */
import { describe, expect, it } from '@jest/globals';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { BIN, ROOT, SHARED_TMP, waitFor } from '../helpers/run.js';
import { useK8sEnv } from './useK8sEnv.js';
import { ANNOTATION_JOB_NAME, LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';

// As on clusters that run it (OpenShift, some managed ones): the leader's worker Jobs must not need
// update on jobs/finalizers, which the Role does not grant.
const k = useK8sEnv({ enableAdmissionPlugins: ['OwnerReferencesPermissionEnforcement'] });

/** What the leader's service account needs, and nothing more. */
const RBAC = `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: toil-workflow-svc
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: toil-leader
rules:
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: toil-leader
subjects:
- kind: ServiceAccount
  name: toil-workflow-svc
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: toil-leader
`;

/** The leader's Job; `runArgs`: more `toil run` options. */
function leaderJob(name: string, locator: string, workflowFile: string, args: string[], runArgs: string[] = []): string {
  const env = {
    TOIL_KUBERNETES_OWNER: 'demouser',
    TOIL_AWS_SECRET_NAME: 's3-credentials',
    TOIL_KUBERNETES_HOST_PATH: '/data/scratch',
    TOIL_KUBERNETES_WORKER_COMMAND: `${process.execPath} ${BIN} worker`,
    AWS_ENDPOINT_URL_S3: k.s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_SHARED_CREDENTIALS_FILE: '/root/.aws/credentials',
  };
  const cmd = [
    process.execPath,
    BIN,
    'run',
    `${ROOT}/${workflowFile}`,
    locator,
    '--logInfo',
    '--batchSystem',
    'kubernetes',
    '--disableCaching',
    'false',
    ...runArgs,
    '--',
    ...args,
  ];
  return `
apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: toil-workflow-svc
      restartPolicy: Never
      containers:
      - name: main
        image: toil-ts:test
        command: ${JSON.stringify(cmd)}
        env:
${Object.entries(env)
  .map(([n, v]) => `        - name: ${n}\n          value: ${JSON.stringify(v)}`)
  .join('\n')}
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        volumeMounts:
        - mountPath: /root/.aws
          name: s3-credentials
      volumes:
      - name: s3-credentials
        secret:
          secretName: s3-credentials
`;
}

type Obj = {
  metadata?: {
    name?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string }>;
  };
  status?: { succeeded?: number; failed?: number };
  spec?: { template?: { spec?: { containers?: Array<{ image?: string }> } } };
};

describe('leader inside the cluster', () => {
  it('runs a workflow with in-cluster config and the least privileges, workers owned by its Job', async () => {
    const applied = await kubectl(
      k.cluster.kubeconfigPath,
      ['apply', '-f', '-'],
      RBAC + '---\n' + leaderJob('demouser-toil-test', k.locator(), 'examples/fanout.ts', ['4']),
    );
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    let sawOwned = false;
    await waitFor(
      () => {
        const workers = (k.cluster.list('batch/jobs') as Obj[]).filter((j) => j.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY);
        if (workers.some((w) => w.metadata?.ownerReferences?.some((r) => r.kind === 'Job' && r.name === 'demouser-toil-test')))
          sawOwned = true;
        // the leader's own image, by the digest its kubelet ran
        if (workers.length > 0) expect(workers[0]!.spec?.template?.spec?.containers?.[0]?.image).toMatch(/^toil-ts@sha256:[0-9a-f]{64}$/);
        const leader = k.cluster.get('batch/jobs', 'default', 'demouser-toil-test') as Obj | undefined;
        return (leader?.status?.succeeded ?? 0) + (leader?.status?.failed ?? 0) > 0;
      },
      120_000,
      'the leader Job to finish',
    );
    const logs = await kubectl(k.cluster.kubeconfigPath, ['logs', 'job/demouser-toil-test']);
    expect(logs.stdout).toMatch(/^14$/m);
    expect((k.cluster.get('batch/jobs', 'default', 'demouser-toil-test') as Obj).status?.succeeded).toBe(1);
    expect(sawOwned).toBe(true);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);

  it('deleting the leader Job removes its worker Jobs too', async () => {
    const { tempDir } = await import('../helpers/run.js');
    const t = await tempDir('toil-test-', SHARED_TMP);
    try {
      const yaml = leaderJob('demouser-toil-slow', k.locator(), 'test/workflows/slow.ts', [t.dir, '3', '60000']);
      const applied = await kubectl(k.cluster.kubeconfigPath, ['apply', '-f', '-'], yaml);
      expect(applied.code).toBe(0);
      const { traceLines } = await import('../helpers/run.js');
      await waitFor(async () => (await traceLines(t.dir)).length >= 3, 120_000, 'three naps running in worker pods');
      expect(k.leftoverJobs()).toBe(3);
      const del = await kubectl(k.cluster.kubeconfigPath, ['delete', 'job', 'demouser-toil-slow', '--cascade=background']);
      expect(del.code).toBe(0);
      await waitFor(() => k.leftoverJobs() === 0, 60_000, 'worker Jobs to be garbage-collected');
    } finally {
      await t.cleanup();
    }
  }, 180_000);

  it('deleting the leader Job removes its executors too, and their pods', async () => {
    const { tempDir, traceLines } = await import('../helpers/run.js');
    const t = await tempDir('toil-test-', SHARED_TMP);
    const executors = () =>
      (k.cluster.list('batch/jobs') as Obj[]).filter(
        (j) => j.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY && j.metadata.annotations?.[ANNOTATION_JOB_NAME] === 'executor',
      );
    try {
      // One slot per executor: three naps need three executors.
      const run = ['--kubernetesExecutors', 'true', '--kubernetesExecutorSlots', '1'];
      const yaml = leaderJob('demouser-toil-execs', k.locator(), 'test/workflows/slow.ts', [t.dir, '3', '60000'], run);
      expect((await kubectl(k.cluster.kubeconfigPath, ['apply', '-f', '-'], RBAC + '---\n' + yaml)).code).toBe(0);
      await waitFor(
        async () => (await traceLines(t.dir)).filter((l) => l.startsWith('nap ')).length === 3 && executors().length >= 3,
        120_000,
        'three naps running on three executors',
      );
      expect(k.leftoverJobs()).toBe(executors().length);
      for (const e of executors())
        expect(e.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', name: 'demouser-toil-execs' })]);
      const del = await kubectl(k.cluster.kubeconfigPath, ['delete', 'job', 'demouser-toil-execs', '--cascade=background']);
      expect(del.code).toBe(0);
      await waitFor(() => k.leftoverJobs() === 0 && k.leftoverPods() === 0, 60_000, 'executor Jobs and pods to be garbage-collected');
    } finally {
      await t.cleanup();
    }
  }, 180_000);
});
