/**
 * A run of one's own, on the second day and the twentieth, as manifests/README says: the example
 * overlay copied to a folder outside the checkout with only its EDIT lines changed renders and
 * runs; the same overlay runs three times with its workflow edited in between, each time with
 * `kubectl replace --force -k`, and leaves only the documented leftovers. Image mode: the toil-ts
 * image on the test cluster, with RBAC.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { changedLines, copyExample, EDIT_MARK, EXAMPLE, filesOf, setMarked } from '../helpers/overlay.js';
import { ROOT } from '../helpers/run.js';
import { leaderEnds, startImageEnv, type ImageEnv } from './leaderRuns.js';

let env: ImageEnv;
let outside: string;
beforeAll(async () => {
  outside = await mkdtemp(path.join(os.tmpdir(), 'toil-own-overlay-'));
  env = await startImageEnv(path.join(outside, 'aws'));
}, 900_000);
afterAll(async () => {
  await env?.stop();
  if (outside) await rm(outside, { recursive: true, force: true });
});

/** A copy of the example outside the checkout, its EDIT lines (and only those) set; checks that. */
async function ownOverlay(name: string, o: { run: string; namespace?: string }): Promise<string> {
  const dir = path.join(outside, name);
  await copyExample(dir);
  const kustomization = path.join(dir, 'kustomization.yaml');
  await setMarked(kustomization, 'example-run', o.run);
  if (o.namespace) await setMarked(kustomization, 'default', o.namespace);
  const [imageName, imageTag] = env.image.split(':') as [string, string];
  await setMarked(kustomization, 'toil-ts', imageName);
  await setMarked(kustomization, '0.1.0', imageTag);
  await setMarked(path.join(dir, 'leader.yaml'), 'aws:us-west-2:demouser-toil-$(TOIL_RUN)', 'aws:us-east-1:alice-$(TOIL_RUN)');
  await setMarked(path.join(dir, 'leader.yaml'), 'demouser', 'alice');
  const changed = changedLines(await filesOf(EXAMPLE), await filesOf(dir));
  expect(changed.length).toBeGreaterThanOrEqual(4);
  for (const line of changed) expect(line).toContain(EDIT_MARK);
  return dir;
}

const WORKFLOW = (n: number) => `import { defineJob } from 'toil-ts';
const which = defineJob('which', async (_ctx, n: number) => \`run \${n}\`);
export default () => which(${n}).require({ memory: '256M', cores: 0.5, disk: '100M' });
`;

describe('a run of your own', () => {
  it('outside the checkout: a copy of the example with only its EDIT lines changed renders and runs', async () => {
    const dir = await ownOverlay('anywhere', { run: 'anywhere' });
    expect(path.relative(ROOT, dir).startsWith('..')).toBe(true);
    const rendered = await env.kubectl(['kustomize', dir]);
    expect(rendered.stderr).toBe('');
    expect(rendered.stdout).toMatch(/name: toil-leader-anywhere\n/);
    const ran = await env.kubectl(['replace', '--force', '-k', dir]);
    expect(ran.stderr).toBe('');
    expect(ran.code).toBe(0);
    const end = await leaderEnds(env, 'toil-leader-anywhere');
    expect(end.logs.trim().split('\n').pop()).toBe('"Hello, world"');
    expect(end.verdict).toBe('Complete');
    expect(end.workersSeen.map((w) => w.metadata?.labels?.['toil-ts.io/owner'])).toEqual(end.workersSeen.map(() => 'alice'));
  }, 240_000);

  it('running again is one command: three runs, the workflow edited in between, leave only the documented leftovers', async () => {
    const ns = 'reruns';
    await env.namespace(ns);
    const dir = await ownOverlay('rerun', { run: 'nightly', namespace: ns });
    const uids = new Set<string>();
    for (const n of [1, 2, 3]) {
      await writeFile(path.join(dir, 'workflow.ts'), WORKFLOW(n));
      const ran = await env.kubectl(['replace', '--force', '-k', dir]);
      expect(ran.stderr).toBe('');
      expect(ran.code).toBe(0);
      // what it says: what it deleted (from the second run on) and what it made, a line each
      expect(ran.stdout.trim().split('\n').length).toBeLessThanOrEqual(6);
      const end = await leaderEnds(env, 'toil-leader-nightly', { namespace: ns });
      expect(end.verdict).toBe('Complete');
      expect(end.logs.trim().split('\n').pop()).toBe(`"run ${n}"`);
      uids.add(end.uid);
    }
    expect(uids.size).toBe(3);
    // manifests/README "What stays": the install part, and the run's last Job and its two ConfigMaps
    const left = await env.kubectl(['get', 'serviceaccounts,roles,rolebindings,configmaps,jobs', '-n', ns, '-o', 'name']);
    const cluster = ['serviceaccount/default', 'configmap/kube-root-ca.crt']; // every namespace has them
    expect(
      left.stdout
        .trim()
        .split('\n')
        .filter((o) => !cluster.includes(o))
        .sort(),
    ).toEqual(
      [
        'serviceaccount/toil-leader',
        'role.rbac.authorization.k8s.io/toil-leader',
        'rolebinding.rbac.authorization.k8s.io/toil-leader',
        'configmap/toil-options-nightly',
        'configmap/toil-workflow-nightly',
        'job.batch/toil-leader-nightly',
      ].sort(),
    );
  }, 600_000);
});
