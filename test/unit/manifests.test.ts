/**
 * The manifests users apply: every kustomization renders with the real `kubectl kustomize`,
 * every object passes the official schema with unknown fields refused, leader-job.yaml is the
 * base rendered, and the leader's Role is exactly what the leader uses.
 */
import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dumpYaml, loadYaml } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/run.js';

const MANIFESTS = path.join(ROOT, 'manifests');
const KUSTOMIZATIONS = ['base', 'overlays/example'];

function kustomize(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('kubectl', ['kustomize', path.join(MANIFESTS, dir)], (err, stdout, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(stdout),
    );
  });
}

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> } } & Record<
  string,
  unknown
>;

function objects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** The kubernetes-models module for each kind the manifests hold. */
const MODELS: Record<string, { module: string; cls: string }> = {
  ServiceAccount: { module: 'kubernetes-models/v1', cls: 'ServiceAccount' },
  ConfigMap: { module: 'kubernetes-models/v1', cls: 'ConfigMap' },
  Role: { module: 'kubernetes-models/rbac.authorization.k8s.io/v1', cls: 'Role' },
  RoleBinding: { module: 'kubernetes-models/rbac.authorization.k8s.io/v1', cls: 'RoleBinding' },
  Job: { module: 'kubernetes-models/batch/v1', cls: 'Job' },
};

/**
 * Schema (types, required fields, enums), plus a round trip through client-node's typed models,
 * which drop any field the API does not know: a misspelt or misplaced field makes a difference.
 */
async function validate(o: K8sObject): Promise<void> {
  const model = MODELS[o.kind];
  if (!model) throw new Error(`unexpected kind ${o.kind}`);
  const mod = (await import(model.module)) as Record<string, new (d: unknown) => { validate(): void }>;
  new mod[model.cls]!(o).validate();
  const roundTrip = loadYaml<unknown>(dumpYaml(o));
  expect(JSON.parse(JSON.stringify(roundTrip))).toEqual(o);
}

describe('manifests', () => {
  it.each(KUSTOMIZATIONS)('%s renders, and every object validates with unknown fields refused', async (dir) => {
    const objs = objects(await kustomize(dir));
    expect(objs.map((o) => o.kind).sort()).toEqual(
      ['ConfigMap', 'Job', 'Role', 'RoleBinding', 'ServiceAccount', ...(dir === 'base' ? [] : ['ConfigMap'])].sort(),
    );
    for (const o of objs) {
      await validate(o);
      expect(o.metadata.labels?.['app.kubernetes.io/name']).toBe('toil-ts');
      expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('toil-ts');
    }
  });

  it('leader-job.yaml is the base rendered (npm run manifests)', async () => {
    const file = await readFile(path.join(MANIFESTS, 'leader-job.yaml'), 'utf8');
    expect(objects(file)).toEqual(objects(await kustomize('base')));
  });

  it('the leader Job has the contract: no retries, Never, a TTL, its service account, POD_NAME, the secret, the guide variables', async () => {
    const job = objects(await kustomize('base')).find((o) => o.kind === 'Job') as unknown as {
      spec: {
        backoffLimit: number;
        ttlSecondsAfterFinished: number;
        template: {
          spec: {
            restartPolicy: string;
            serviceAccountName: string;
            containers: Array<{
              env: Array<{ name: string; value?: string; valueFrom?: unknown }>;
              volumeMounts: Array<{ name: string; mountPath: string }>;
            }>;
            volumes: Array<{ name: string; secret?: { secretName: string } }>;
          };
        };
      };
    };
    const pod = job.spec.template.spec;
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThanOrEqual(3600);
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.serviceAccountName).toBe('toil-leader');
    const env = Object.fromEntries(pod.containers[0]!.env.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toMatchObject({
      TOIL_KUBERNETES_OWNER: 'demouser',
      TOIL_AWS_SECRET_NAME: 's3-credentials',
      TOIL_KUBERNETES_HOST_PATH: '/data/scratch',
      POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
    });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: 's3-credentials', mountPath: '/root/.aws', readOnly: true });
    // optional: a missing secret is told by the leader in its log (credentialsMount.ts)
    expect(pod.volumes).toContainEqual({ name: 's3-credentials', secret: { secretName: 's3-credentials', optional: true } });
    expect(env).toMatchObject({ AWS_SHARED_CREDENTIALS_FILE: '/root/.aws/credentials', AWS_CONFIG_FILE: '/root/.aws/config' });
  });

  it("the leader runs with least privilege, as Pod Security's 'restricted' level asks", async () => {
    const job = objects(await kustomize('base')).find((o) => o.kind === 'Job') as unknown as {
      spec: { template: { spec: { securityContext: unknown; containers: Array<{ securityContext: unknown }> } } };
    };
    const pod = job.spec.template.spec;
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
  });

  it("the leader's Role names exact verbs on exact resources: no wildcards", async () => {
    const role = objects(await kustomize('base')).find((o) => o.kind === 'Role') as unknown as {
      rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
    };
    for (const r of role.rules) for (const x of [...r.apiGroups, ...r.resources, ...r.verbs]) expect(x).not.toContain('*');
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'watch', 'delete', 'deletecollection'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
  });
});
