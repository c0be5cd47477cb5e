/**
 * The shipped manifests and the image on a cluster that says no as real ones do: namespaces at
 * Pod Security levels, a leader applied before its secret, a leader deleted with its workers
 * asleep, and what its Role allows as `kubectl auth can-i` lists it. The image is built from
 * our Dockerfile and run by the test cluster's kubelet from its root file system (tini as
 * PID 1, the image's own non-root user).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startTestCluster, type TestCluster } from '@toil-ts/testbed/cluster';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { ensureToilImage } from '@toil-ts/testbed/images';
import { startTestS3, useTestS3Env, type TestS3 } from '@toil-ts/testbed/s3';
import { parseAllDocuments, stringify } from 'yaml';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../src/batch/kubernetesSpec.js';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { ROOT, waitFor } from '../helpers/run.js';
import { writeS3Credentials } from './setup.js';

const WORK = path.join(ROOT, '.tmp', 'refusals');
const BUCKET = 'workflows-refused';

/** Six jobs that sleep for ten minutes: workers with nothing to do but be stopped. */
const SLEEPERS = `import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
const nap = defineJob('nap', async (ctx: JobContext, i: number) => {
  ctx.log(\`nap \${i} asleep\`);
  await new Promise((r) => setTimeout(r, 600_000));
  return i;
});
const root = defineJob('sleepers', async (ctx: JobContext) => {
  for (let i = 0; i < 6; i++) ctx.addChild(nap(i).require({ cores: 0.1, memory: '256Mi', disk: '64Mi' }));
});
export default function workflow(_wf: WorkflowContext) {
  return root().require({ cores: 0.1, memory: '256Mi', disk: '64Mi' });
}
`;

type Obj = {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }> };
};

let cluster: TestCluster;
let s3: TestS3;
let image: string;
let credentials: string;

beforeAll(async () => {
  image = (await ensureToilImage((l) => process.stderr.write(`image: ${l}\n`))).name;
  [cluster, s3] = await Promise.all([
    startTestCluster({ jobBackoffBaseMs: 100, containerImages: { storageDriver: 'vfs' } }),
    startTestS3({ conditionalWrites: true }),
  ]);
  await mkdir(WORK, { recursive: true });
  credentials = await writeS3Credentials({ dir: WORK, endpoint: s3.endpoint });
  const restore = useTestS3Env(s3);
  try {
    const client = makeS3Client(s3SettingsFromEnv('us-east-1'));
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const wordcount = await readFile(path.join(ROOT, 'bench', 'workflows', 'wordcount.ts'), 'utf8');
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'wordcount.ts', Body: wordcount }));
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sleepers.ts', Body: SLEEPERS }));
  } finally {
    restore();
  }
}, 900_000);

afterAll(async () => {
  await Promise.all([cluster?.stop(), s3?.stop()]);
});

const k = (args: string[], input?: string) => kubectl(cluster.kubeconfigPath, args, input);

/** A namespace with Pod Security labels, and the guide's secret in it unless told not to. */
async function namespace(name: string, o: { enforce?: string; secret?: boolean } = {}): Promise<void> {
  expect((await k(['create', 'namespace', name])).code).toBe(0);
  if (o.enforce) expect((await k(['label', 'namespace', name, `pod-security.kubernetes.io/enforce=${o.enforce}`])).code).toBe(0);
  if (o.secret !== false) {
    const made = await k(['create', 'secret', 'generic', 's3-credentials', '-n', name, '--from-file', `credentials=${credentials}`]);
    expect(made.stderr).toBe('');
  }
}

/**
 * manifests/leader-job.yaml as shipped, with the leader's environment changed: `set` adds or
 * replaces variables, `drop` removes them (as a user edits the file).
 */
async function shipped(o: { set?: Record<string, string>; drop?: string[] } = {}): Promise<string> {
  const docs = parseAllDocuments(await readFile(path.join(ROOT, 'manifests', 'leader-job.yaml'), 'utf8')).map(
    (d) => d.toJS() as Record<string, unknown>,
  );
  for (const d of docs) {
    if (d['kind'] !== 'Job') continue;
    const c = (
      d as { spec: { template: { spec: { containers: Array<{ image: string; env: Array<{ name: string; value?: string }> }> } } } }
    ).spec.template.spec.containers[0]!;
    c.image = image;
    c.env = c.env.filter((e) => !(o.drop ?? []).includes(e.name) && !(e.name in (o.set ?? {})));
    for (const [name, value] of Object.entries(o.set ?? {})) c.env.push({ name, value });
  }
  return docs.map((d) => stringify(d)).join('---\n');
}

async function apply(ns: string, yaml: string): Promise<void> {
  const r = await k(['apply', '-n', ns, '-f', '-'], yaml);
  expect(r.stderr).toBe('');
}

/** Waits for the leader Job of `ns` to end; its verdict and log. */
async function leaderEnds(ns: string, timeoutMs = 240_000): Promise<{ verdict: string; logs: string; seconds: number }> {
  const t0 = Date.now();
  let verdict: string | undefined;
  await waitFor(
    () => {
      const conds = (cluster.get('batch/jobs', ns, 'toil-leader') as Obj | undefined)?.status?.conditions ?? [];
      verdict = conds.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type;
      return verdict !== undefined;
    },
    timeoutMs,
    `the leader Job in ${ns} to end`,
  );
  const seconds = (Date.now() - t0) / 1000;
  return { verdict: verdict!, logs: (await k(['logs', '-n', ns, 'job/toil-leader'])).stdout, seconds };
}

const workerPods = (ns: string): Obj[] =>
  (cluster.list('pods', ns) as Obj[]).filter((p) => p.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY);

describe('the shipped manifests under Pod Security', () => {
  it('restricted, without the host path: the hello world and a 16-chunk word count complete, leader and workers admitted', async () => {
    await namespace('restricted', { enforce: 'restricted' });
    await apply('restricted', await shipped({ drop: ['TOIL_KUBERNETES_HOST_PATH'] }));
    const hello = await leaderEnds('restricted');
    expect(hello.logs).toMatch(/^"Hello, world"$/m);
    expect(hello.verdict).toBe('Complete');
    expect((await k(['delete', 'job', 'toil-leader', '-n', 'restricted'])).code).toBe(0);
    await waitFor(() => cluster.get('batch/jobs', 'restricted', 'toil-leader') === undefined, 60_000, 'the first leader Job to go');
    await apply(
      'restricted',
      await shipped({
        drop: ['TOIL_KUBERNETES_HOST_PATH'],
        set: { TOIL_WORKFLOW: `s3://${BUCKET}/wordcount.ts`, TOIL_JOB_STORE: 'aws:us-west-2:demouser-restricted-wordcount' },
      }),
    );
    const words = await leaderEnds('restricted');
    // 16 chunks of 100, 101, … 115 words
    expect(words.logs).toMatch(/^1720$/m);
    expect(words.verdict).toBe('Complete');
  }, 600_000);

  it('baseline, with the host path: the job fails fast, naming hostPath and what to change', async () => {
    await namespace('baseline', { enforce: 'baseline' });
    await apply('baseline', await shipped());
    const end = await leaderEnds('baseline');
    expect(end.verdict).toBe('Failed');
    expect(end.logs).toMatch(/violates PodSecurity "baseline:latest": hostPath volumes \(volume "toil-cache"\)/);
    expect(end.logs).toMatch(/label it pod-security\.kubernetes\.io\/enforce=privileged, or run without a host path/);
    // at once, not after --kubernetesPodTimeout (600 s), and not once per try
    expect(end.seconds).toBeLessThan(90);
    expect(workerPods('baseline')).toEqual([]);
  }, 300_000);
});

describe('the leader', () => {
  it('applied before its secret: kubectl logs says within a minute that the secret is missing and how to make it', async () => {
    await namespace('nosecret', { secret: false });
    await apply('nosecret', await shipped());
    const end = await leaderEnds('nosecret', 60_000);
    expect(end.verdict).toBe('Failed');
    expect(end.logs).toMatch(
      /no AWS credentials at \/root\/\.aws\/credentials: the secret 's3-credentials' \(TOIL_AWS_SECRET_NAME\) is missing in namespace 'nosecret'/,
    );
    expect(end.logs).toMatch(/kubectl create secret generic s3-credentials -n nosecret --from-file credentials=\$HOME\/\.aws\/credentials/);
  }, 120_000);

  it('deleted with six workers asleep: every worker pod is gone within 5 s', async () => {
    await namespace('signals');
    await apply(
      'signals',
      await shipped({ set: { TOIL_WORKFLOW: `s3://${BUCKET}/sleepers.ts`, TOIL_JOB_STORE: 'aws:us-west-2:demouser-signals' } }),
    );
    await waitFor(() => workerPods('signals').filter((p) => p.status?.phase === 'Running').length === 6, 300_000, 'six sleeping workers');
    // the workers have started their naps
    await waitFor(
      async () => ((await k(['logs', '-n', 'signals', 'job/toil-leader'])).stdout.match(/asleep/g) ?? []).length === 6,
      60_000,
      'six naps',
    );
    const t0 = Date.now();
    expect((await k(['delete', 'job', 'toil-leader', '-n', 'signals', '--wait=false'])).code).toBe(0);
    await waitFor(() => workerPods('signals').length === 0, 30_000, 'the worker pods to go');
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 600_000);

  it("its Role, as kubectl auth can-i --list shows it for the leader's service account", async () => {
    await namespace('rbac', { secret: false });
    const rbac = parseAllDocuments(await shipped()).filter((d) =>
      ['ServiceAccount', 'Role', 'RoleBinding'].includes(String(d.get('kind'))),
    );
    await apply('rbac', rbac.map((d) => d.toString()).join('---\n'));
    const r = await k(['auth', 'can-i', '--list', '-n', 'rbac', '--as=system:serviceaccount:rbac:toil-leader']);
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/));
    const verbs = (resource: string) => rows.find((row) => row[0] === resource)?.at(-1);
    expect(verbs('jobs.batch')).toBe('[create get list watch delete deletecollection]');
    expect(verbs('pods')).toBe('[get list watch]');
    expect(verbs('pods/log')).toBe('[get]');
    expect(verbs('events')).toBe('[list]');
    expect(rows.map((row) => row[0])).not.toContain('secrets');
  }, 60_000);
});
