/**
 * The product as users meet it: the image built from our Dockerfile, run by the test cluster's
 * kubelet from its root file system, started with the shipped manifests and the real kubectl —
 * `kubectl apply -f manifests/leader-job.yaml`, and `kubectl replace --force -k` of an overlay
 * made like manifests/overlays/example with a workflow of its own in a ConfigMap. The cluster
 * enforces RBAC, so the leader runs with exactly the manifests' Role. (ownOverlay.test.ts: an
 * overlay outside the checkout, and running one again.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT, waitFor } from '../helpers/run.js';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { makeS3Client, s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';
import { useTestS3Env } from '@toil-ts/testbed/s3';
import { copyExample, setMarked } from '../helpers/overlay.js';
import { editYaml, leaderEnds as ends, setLeaderEnv, startImageEnv, type ImageEnv } from './leaderRuns.js';

const OVERLAYS = path.join(ROOT, '.tmp', 'overlays');

let env: ImageEnv;
beforeAll(async () => {
  env = await startImageEnv(path.join(OVERLAYS, 'aws'));
}, 900_000);
afterAll(async () => {
  await env?.stop();
});

const k = (args: string[], input?: string) => env.kubectl(args, input);
const workerJobs = () => env.workerJobs();
const leaderEnds = (name: string, timeoutMs?: number) => ends(env, name, timeoutMs === undefined ? {} : { timeoutMs });

/** An overlay made as a user would: a copy of overlays/example, its run name and workflow files set. */
async function makeOverlay(
  name: string,
  files: Record<string, string>,
  edits: { config?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const dir = path.join(OVERLAYS, name);
  await rm(dir, { recursive: true, force: true });
  await copyExample(dir);
  await setMarked(path.join(dir, 'kustomization.yaml'), 'example-run', name);
  await rm(path.join(dir, 'workflow.ts'));
  for (const [f, text] of Object.entries(files)) await writeFile(path.join(dir, f), text);
  await editYaml(path.join(dir, 'kustomization.yaml'), (doc) => {
    doc.setIn(['configMapGenerator', 0, 'files'], doc.createNode(Object.keys(files)));
  });
  await setLeaderEnv(dir, { TOIL_WORKFLOW: `/workflow/${Object.keys(files)[0]}`, ...edits.env });
  if (edits.config !== undefined) await writeFile(path.join(dir, 'config.yaml'), edits.config);
  return dir;
}

/** Runs an overlay as manifests/README says: `kubectl replace --force -k <dir>`. */
const runOverlay = (dir: string) => k(['replace', '--force', '-k', dir]);

const FANOUT_MAIN = `import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { part, total } from './lib.ts';

const fan = defineJob('fan', async (ctx: JobContext, n: number) => {
  const ids = Array.from({ length: n }, (_, i) => ctx.addChild(part(i + 1).require({ memory: '256M', cores: 0.5, disk: '100M' })).rv());
  return ctx.addFollowOn(total(ids).require({ memory: '256M', cores: 0.5, disk: '100M' })).rv();
});

export default function workflow(wf: WorkflowContext) {
  return fan(Number(wf.args[0] ?? 4)).require({ memory: '256M', cores: 0.5, disk: '100M' });
}
`;
const FANOUT_LIB = `import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { defineJob, type JobContext } from 'toil-ts';

/** Writes i thousand bytes to the job store and returns the file's ID. */
export const part = defineJob('part', async (ctx: JobContext, i: number) => {
  const file = path.join(await ctx.fileStore.localTempDir(), 'part.txt');
  await writeFile(file, 'x'.repeat(i * 1000));
  return ctx.fileStore.writeGlobalFile(file);
});

/** Reads every file back and adds up their sizes. */
export const total = defineJob('total', async (ctx: JobContext, ids: string[]) => {
  let bytes = 0;
  for (const id of ids) bytes += (await readFile(await ctx.fileStore.readGlobalFile(id))).length;
  return { files: ids.length, bytes };
});
`;

const GREET = `import { defineJob } from 'toil-ts';
const greet = defineJob('greet', async (_ctx, where: string) => \`greetings from \${where}\`);
export default () => greet('s3').require({ memory: '256M', cores: 0.5, disk: '100M' });
`;

describe('the leader image and the manifests', () => {
  it('kubectl apply -f manifests/leader-job.yaml runs hello world from the image; its workers run the same image', async () => {
    const file = path.join(ROOT, 'manifests', 'leader-job.yaml');
    const dry = await k(['apply', '--dry-run=server', '--validate=strict', '-f', file]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const applied = await k(['apply', '-f', file]);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    const end = await leaderEnds('toil-leader');
    expect(end.logs).toMatch(/^"Hello, world"$/m);
    expect(end.verdict).toBe('Complete');
    expect(end.workersSeen.length).toBeGreaterThan(0);
    for (const w of end.workersSeen) {
      expect(w.spec?.template?.spec?.containers?.[0]?.image).toBe(env.image);
      expect(w.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'Job', name: 'toil-leader' })]);
    }
    expect(workerJobs()).toEqual([]);
    // the leader's identity can do what the Role says and nothing else
    const sa = 'system:serviceaccount:default:toil-leader';
    expect((await k(['auth', 'can-i', 'create', 'jobs', '--as', sa])).stdout.trim()).toBe('yes');
    expect((await k(['auth', 'can-i', 'create', 'pods', '--as', sa])).stdout.trim()).toBe('no');
    expect((await k(['auth', 'can-i', 'get', 'secrets', '--as', sa])).stdout.trim()).toBe('no');
  }, 240_000);

  it('an overlay (kubectl replace --force -k) runs a workflow of several files from a ConfigMap, with files through the job store', async () => {
    const dir = await makeOverlay(
      'fanout',
      { 'main.ts': FANOUT_MAIN, 'lib.ts': FANOUT_LIB },
      { env: { AWS_ENDPOINT_URL_S3: env.s3.endpoint } },
    );
    const dry = await k(['apply', '--dry-run=server', '--validate=strict', '-k', dir]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    const applied = await runOverlay(dir);
    expect(applied.code).toBe(0);
    const end = await leaderEnds('toil-leader-fanout');
    expect(end.logs.trim().split('\n').pop()).toBe(JSON.stringify({ files: 4, bytes: 10_000 }));
    expect(end.verdict).toBe('Complete');
    expect(end.workersSeen.length).toBeGreaterThanOrEqual(5);
    expect(workerJobs()).toEqual([]);
  }, 240_000);

  it('the workflow can come from a URL: an s3:// object fetched by the leader', async () => {
    const bucket = 'workflows-by-url';
    const restore = useTestS3Env(env.s3); // credentials are read when a request is sent
    try {
      const client = makeS3Client(s3SettingsFromEnv('us-east-1'));
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'greet.ts', Body: GREET }));
    } finally {
      restore();
    }
    const dir = await makeOverlay('by-url', { 'unused.ts': '' }, { env: { TOIL_WORKFLOW: `s3://${bucket}/greet.ts` } });
    expect((await runOverlay(dir)).code).toBe(0);
    const end = await leaderEnds('toil-leader-by-url');
    expect(end.logs.trim().split('\n').pop()).toBe('"greetings from s3"');
    expect(end.verdict).toBe('Complete');
  }, 240_000);

  it("a failing workflow makes the leader Job Failed; its logs name the job, tell its error once with the workflow's frames, then its log tail", async () => {
    const main = `import { defineJob, type JobContext } from 'toil-ts';
async function readSample(sample: string): Promise<void> {
  await new Promise((r) => setTimeout(r, 10));
  throw new Error(\`alignment of \${sample} failed\`);
}
const align = defineJob('align', async (_ctx: JobContext, sample: string) => {
  console.error(\`samtools: \${sample}.bam: input file is truncated\`);
  await readSample(sample);
});
export default () => align('sample-42').require({ memory: '256M', cores: 0.5, disk: '100M' });
`;
    const dir = await makeOverlay('fails', { 'main.ts': main }, { config: 'batchSystem: kubernetes\nretryCount: 0\n' });
    expect((await runOverlay(dir)).code).toBe(0);
    const end = await leaderEnds('toil-leader-fails');
    expect(end.verdict).toBe('Failed');
    expect(end.logs.split('alignment of sample-42 failed')).toHaveLength(2);
    expect(end.logs).toMatch(
      /job 'align' \(align-[a-z0-9]+\): the job threw Error: alignment of sample-42 failed\n {4}at readSample \(\/workflow\/main\.ts:\d+:\d+\)\n {4}at async FunctionJob\.fn \(\/workflow\/main\.ts:\d+:\d+\)\n[\s\S]*\| samtools: sample-42\.bam: input file is truncated/,
    );
    expect(end.logs).not.toMatch(/node_modules|bin\/toil\.js|\/opt\/toil-ts\/(dist|src)\//);
    expect(workerJobs()).toEqual([]);
  }, 240_000);

  it('deleting the leader Job removes its worker Jobs', async () => {
    const main = `import { defineJob, type JobContext } from 'toil-ts';
const nap = defineJob('nap', async () => { await new Promise((r) => setTimeout(r, 300_000)); return 1; });
const spread = defineJob('spread', async (ctx: JobContext) => { for (let i = 0; i < 3; i++) ctx.addChild(nap().require({ memory: '256M', cores: 0.5, disk: '100M' })); });
export default () => spread().require({ memory: '256M', cores: 0.5, disk: '100M' });
`;
    const dir = await makeOverlay('deleted', { 'main.ts': main });
    expect((await runOverlay(dir)).code).toBe(0);
    await waitFor(
      () => workerJobs().filter((w) => w.metadata?.ownerReferences?.some((r) => r.name === 'toil-leader-deleted')).length >= 3,
      120_000,
      'three naps in worker Jobs',
    );
    expect((await k(['delete', 'job', 'toil-leader-deleted'])).code).toBe(0);
    await waitFor(() => workerJobs().length === 0, 60_000, 'the worker Jobs to be removed');
  }, 240_000);

  it('the leader sizes its heap from its memory limit (the downward API), and ends telling the heap used beside peak RSS', async () => {
    const one = `import { defineJob } from 'toil-ts';\nconst one = defineJob('one', async () => 'sized');\nexport default () => one();\n`;
    const dir = await makeOverlay('heap', { 'main.ts': one }, { config: 'batchSystem: single_machine\nlogLevel: info\n' });
    await editYaml(path.join(dir, 'leader.yaml'), (doc) => {
      doc.setIn(
        ['spec', 'template', 'spec', 'containers', 0, 'resources'],
        doc.createNode({ requests: { memory: '512Mi' }, limits: { memory: '512Mi' } }),
      );
    });
    expect((await runOverlay(dir)).code).toBe(0);
    const end = await leaderEnds('toil-leader-heap');
    expect(end.verdict).toBe('Complete');
    expect(end.logs.trim().split('\n').pop()).toBe('"sized"');
    // 512 MiB less 192 MiB of room for the rest of the process.
    expect(end.logs).toMatch(/leader heap limit 320 MiB, from a memory limit of 512 MiB \(TOIL_MEMORY_LIMIT\)/);
    const summary = /leader peak RSS \d+ MiB, peak heap used (\d+) MiB of (\d+) MiB/.exec(end.logs);
    expect(summary).not.toBeNull();
    // V8's limit is the old space asked for plus the young generation's few tens of MiB.
    expect(Number(summary![2])).toBeGreaterThanOrEqual(320);
    expect(Number(summary![2])).toBeLessThan(400);
    expect(Number(summary![1])).toBeLessThan(Number(summary![2]));
  }, 240_000);

  /** Applies an overlay whose leader must fail at once, and returns its logs. */
  async function failsAtOnce(name: string, edit: (dir: string) => Promise<void>): Promise<string> {
    const dir = await makeOverlay(name, { 'main.ts': 'export default () => { throw new Error("never built"); };\n' });
    await edit(dir);
    const started = Date.now();
    expect((await runOverlay(dir)).code).toBe(0);
    const end = await leaderEnds(`toil-leader-${name}`, 60_000);
    expect(end.verdict).toBe('Failed');
    expect(end.workersSeen).toEqual([]);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(end.logs.trim().split('\n')).toHaveLength(1);
    return end.logs;
  }

  it('a bad job store locator fails the leader Job at once, the one-line reason in its logs', async () => {
    const logs = await failsAtOnce('bad-locator', (dir) => setLeaderEnv(dir, { TOIL_JOB_STORE: 'aws:nowhere' }));
    expect(logs).toMatch(/^toil: .*aws:nowhere/);
  }, 120_000);

  it('a bad option in the config file fails the leader Job at once, the one-line reason in its logs', async () => {
    const logs = await failsAtOnce('bad-option', (dir) =>
      writeFile(path.join(dir, 'config.yaml'), 'batchSystem: kubernetes\nretryCount: many\n'),
    );
    expect(logs).toMatch(/^toil: .*retryCount.*many/);
  }, 120_000);
});
