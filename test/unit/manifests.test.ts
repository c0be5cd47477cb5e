/**
 * The manifests users apply: every kustomization renders with the real `kubectl kustomize`,
 * every object passes the official schema with unknown fields refused, leader-job.yaml is the
 * install and base parts rendered, the leader's Role is exactly what the leader uses, a run's
 * objects are named after its run name (set in one place), the lines a user must change are
 * marked, and `toil init --kubernetes` makes the same overlay anywhere.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dumpYaml, loadYaml } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { copyExample, EXAMPLE, filesOf, MANIFESTS, markedLines, setMarked } from '../helpers/overlay.js';
import { tempDir, toil } from '../helpers/run.js';

/** Each kustomization and the kinds it makes. */
const KUSTOMIZATIONS: Record<string, string[]> = {
  install: ['Role', 'RoleBinding', 'ServiceAccount'],
  base: ['ConfigMap', 'Job'],
  'overlays/example': ['ConfigMap', 'ConfigMap', 'Job'],
};

/** `kubectl kustomize` of a folder (relative to manifests/, or absolute). */
function kustomize(dir: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('kubectl', ['kustomize', path.resolve(MANIFESTS, dir)], (err, stdout, stderr) =>
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
  it.each(Object.keys(KUSTOMIZATIONS))('%s renders, and every object validates with unknown fields refused', async (dir) => {
    const objs = objects(await kustomize(dir));
    expect(objs.map((o) => o.kind).sort()).toEqual(KUSTOMIZATIONS[dir]);
    for (const o of objs) {
      await validate(o);
      expect(o.metadata.labels?.['app.kubernetes.io/name']).toBe('toil-ts');
      expect(o.metadata.labels?.['app.kubernetes.io/part-of']).toBe('toil-ts');
    }
  });

  it('leader-job.yaml is the install and base parts rendered (npm run manifests)', async () => {
    const file = await readFile(path.join(MANIFESTS, 'leader-job.yaml'), 'utf8');
    expect(objects(file)).toEqual([...objects(await kustomize('install')), ...objects(await kustomize('base'))]);
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
    const role = objects(await kustomize('install')).find((o) => o.kind === 'Role') as unknown as {
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

type RunJob = {
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        containers: Array<{ env: Array<{ name: string; value?: string; valueFrom?: unknown }> }>;
        volumes: Array<{ name: string; configMap?: { name: string } }>;
      };
    };
  };
};

describe('a run of your own', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    tmp = await tempDir('toil-overlay-');
  });
  afterAll(async () => {
    await tmp.cleanup();
  });

  /** The run's Job and the names of its ConfigMaps, rendered from `dir`. */
  async function rendered(dir: string): Promise<{ job: RunJob; configMaps: string[]; text: string }> {
    const text = await kustomize(dir);
    const objs = objects(text);
    return {
      job: objs.find((o) => o.kind === 'Job') as unknown as RunJob,
      configMaps: objs.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name),
      text,
    };
  }

  it("is named after its run name, set in one place: its Job, its ConfigMaps, the Job's mounts, its job store, their label", async () => {
    const { job, configMaps } = await rendered('overlays/example');
    expect(job.metadata.name).toBe('toil-leader-example-run');
    expect(configMaps.sort()).toEqual(['toil-options-example-run', 'toil-workflow-example-run']);
    const pod = job.spec.template;
    expect(pod.spec.volumes).toEqual(
      expect.arrayContaining([
        { name: 'options', configMap: { name: 'toil-options-example-run' } },
        { name: 'workflow', configMap: { name: 'toil-workflow-example-run', optional: true } },
      ]),
    );
    for (const labels of [job.metadata.labels, pod.metadata.labels]) expect(labels['app.kubernetes.io/instance']).toBe('example-run');
    // the job store is the run's: $(TOIL_RUN), from the pod's label, defined before it
    const env = pod.spec.containers[0]!.env;
    expect(env[0]).toEqual({ name: 'TOIL_RUN', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app.kubernetes.io/instance']" } } });
    expect(env.find((e) => e.name === 'TOIL_JOB_STORE')?.value).toMatch(/^aws:[a-z0-9-]+:[a-z0-9-]+-\$\(TOIL_RUN\)$/);

    // another name, on its one marked line, renames everything
    const dir = path.join(tmp.dir, 'renamed');
    await copyExample(dir);
    await setMarked(path.join(dir, 'kustomization.yaml'), 'example-run', 'sample-42');
    const other = await rendered(dir);
    expect(other.job.metadata.name).toBe('toil-leader-sample-42');
    expect(other.configMaps.sort()).toEqual(['toil-options-sample-42', 'toil-workflow-sample-42']);
    expect(other.text).not.toMatch(/example-run/);
    for (const o of objects(other.text)) expect(o.metadata.labels?.['app.kubernetes.io/instance']).toBe('sample-42');
  });

  it('marks every line a user must change with EDIT', async () => {
    const marked = Object.entries(await filesOf(EXAMPLE)).flatMap(([f, text]) => markedLines(text).map((m) => `${f}: ${m.key} ${m.value}`));
    expect(marked.sort()).toEqual(
      [
        'kustomization.yaml: - ../../base',
        'kustomization.yaml: namespace: default',
        'kustomization.yaml: app.kubernetes.io/instance: example-run',
        'kustomization.yaml: newName: toil-ts',
        'kustomization.yaml: newTag: 0.1.0',
        'kustomization.yaml: - workflow.ts',
        'leader.yaml: value: aws:us-west-2:demouser-toil-$(TOIL_RUN)',
        'leader.yaml: value: demouser',
      ].sort(),
    );
  });

  it('toil init --kubernetes makes it in any folder, renders offline as the example does, and overwrites nothing', async () => {
    const dir = path.join(tmp.dir, 'elsewhere', 'my-run');
    const made = await toil(['init', '--kubernetes', dir], { cwd: tmp.dir });
    expect(made.code).toBe(0);
    expect(made.stderr).toMatch(/kubectl replace --force -k elsewhere\/my-run/);
    expect(markedLines(await readFile(path.join(dir, 'kustomization.yaml'), 'utf8'))).toContainEqual({ key: '-', value: 'toil-ts/base' });
    expect(objects(await kustomize(dir))).toEqual(objects(await kustomize('overlays/example')));
    expect(objects(await kustomize(path.join(dir, 'toil-ts', 'install')))).toEqual(objects(await kustomize('install')));
    const before = await filesOf(dir);
    const again = await toil(['init', '--kubernetes', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already in .*my-run: toil init writes nothing over existing files/);
    expect(await filesOf(dir)).toEqual(before);
  }, 60_000);
});
