/**
 * The leader as a Job in image mode, for the tests of the product as users meet it: the image
 * built from our Dockerfile, the test cluster running it from its root file system (with
 * OwnerReferencesPermissionEnforcement, as clusters that run it), the test S3 server, the
 * `s3-credentials` secret as the guide makes it (its profile names the S3 endpoint, so the
 * manifests need no edit to reach it) and the install part applied; and a leader Job followed to
 * its end.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startTestCluster, type TestCluster } from '@toil-ts/testbed/cluster';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { ensureToilImage } from '@toil-ts/testbed/images';
import { startTestS3, type TestS3 } from '@toil-ts/testbed/s3';
import { parseDocument, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';
import { MANIFESTS } from '../helpers/overlay.js';
import { waitFor } from '../helpers/run.js';
import { createS3Secret } from './setup.js';

export interface JobObj {
  metadata?: { name?: string; uid?: string; labels?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string }> };
  spec?: { template?: { spec?: { containers?: Array<{ image?: string }> } } };
  status?: { conditions?: Array<{ type: string; status: string }> };
}

export interface ImageEnv {
  cluster: TestCluster;
  s3: TestS3;
  /** The toil-ts image the manifests name (built from the Dockerfile). */
  image: string;
  kubectl(args: string[], input?: string): ReturnType<typeof kubectl>;
  /** A namespace of its own: made, with the secret and the install part, as the README says. */
  namespace(name: string): Promise<void>;
  /** The worker Jobs of toil-ts now in the cluster. */
  workerJobs(): JobObj[];
  stop(): Promise<void>;
}

/** Starts it all; `dir` holds the credentials file the secrets are made from. */
export async function startImageEnv(dir: string): Promise<ImageEnv> {
  const image = (await ensureToilImage((l) => process.stderr.write(`image: ${l}\n`))).name;
  const [cluster, s3] = await Promise.all([
    // the leader's worker Jobs must not need update on jobs/finalizers, which the Role does not grant
    startTestCluster({
      jobBackoffBaseMs: 100,
      containerImages: { storageDriver: 'vfs' },
      enableAdmissionPlugins: ['OwnerReferencesPermissionEnforcement'],
    }),
    startTestS3({ conditionalWrites: true }),
  ]);
  await mkdir(dir, { recursive: true });
  const k = (args: string[], input?: string) => kubectl(cluster.kubeconfigPath, args, input);
  const namespace = async (name?: string): Promise<void> => {
    const ns = name ? ['-n', name] : [];
    if (name && (await k(['create', 'namespace', name])).code !== 0) throw new Error(`cannot make namespace ${name}`);
    await createS3Secret(cluster.kubeconfigPath, { dir, endpoint: s3.endpoint, ...(name ? { namespace: name } : {}) });
    const installed = await k(['apply', '-k', path.join(MANIFESTS, 'install'), ...ns]);
    if (installed.code !== 0) throw new Error(`kubectl apply -k manifests/install failed: ${installed.stderr}`);
  };
  await namespace();
  return {
    cluster,
    s3,
    image,
    kubectl: k,
    namespace,
    workerJobs: () => (cluster.list('batch/jobs') as JobObj[]).filter((j) => j.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY),
    stop: async () => {
      await Promise.all([cluster.stop(), s3.stop()]);
    },
  };
}

/** Waits for the leader Job to end; records the worker Jobs seen meanwhile. */
export async function leaderEnds(
  env: ImageEnv,
  name: string,
  opts: { namespace?: string; timeoutMs?: number } = {},
): Promise<{ verdict: 'Complete' | 'Failed'; workersSeen: JobObj[]; logs: string; uid: string }> {
  const ns = opts.namespace ?? 'default';
  const seen = new Map<string, JobObj>();
  let verdict: 'Complete' | 'Failed' | undefined;
  let uid = '';
  await waitFor(
    () => {
      for (const w of env.workerJobs()) seen.set(w.metadata!.name!, w);
      const job = env.cluster.get('batch/jobs', ns, name) as JobObj | undefined;
      uid = job?.metadata?.uid ?? '';
      const conds = job?.status?.conditions ?? [];
      verdict = conds.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type as typeof verdict;
      return verdict !== undefined;
    },
    opts.timeoutMs ?? 180_000,
    `the leader Job ${name} to end`,
  );
  const logs = await env.kubectl(['logs', `job/${name}`, '-n', ns]);
  return { verdict: verdict!, workersSeen: [...seen.values()], logs: logs.stdout, uid };
}

export async function editYaml(file: string, edit: (doc: Document) => void): Promise<void> {
  const doc = parseDocument(await readFile(file, 'utf8'));
  edit(doc);
  await writeFile(file, doc.toString());
}

/** Sets (or adds) env entries of the leader container in an overlay's leader.yaml. */
export async function setLeaderEnv(dir: string, env: Record<string, string>): Promise<void> {
  await editYaml(path.join(dir, 'leader.yaml'), (doc) => {
    const list = doc.getIn(['spec', 'template', 'spec', 'containers', 0, 'env']) as YAMLSeq<YAMLMap>;
    for (const [name, value] of Object.entries(env)) {
      const entry = list.items.find((e) => e.get('name') === name);
      if (entry) entry.set('value', value);
      else list.add(doc.createNode({ name, value }));
    }
  });
}
