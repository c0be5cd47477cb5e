/**
 * The engine's acceptance cases on the test cluster (the AWS job store on a test S3 server), in
 * both modes: a pod per batch job, and executor pods. Each case runs the same workflow with the
 * same expectations in each mode; the first also checks that the mode is the one asked for. The
 * whole set on single_machine, in both modes, is test/engine/semantics*.test.ts.
 */
import { beforeEach, expect, it, describe } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SHARED_TMP, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { useK8sEnv } from './useK8sEnv.js';
import { failsFirst, napsOnKubernetes } from '../workflows/args.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv();
beforeEach(() => {
  k.cluster.resetRequestCounts();
});

describe.each([
  ['a pod per job', {}],
  ['executor pods', { TOIL_KUBERNETES_EXECUTORS: 'true' }],
])('engine semantics on kubernetes, %s', (_, mode: NodeJS.ProcessEnv) => {
  it('keeps ordering with dynamic children and follow-ons', async () => {
    const r = await toil(['run', workflow('ordering.ts'), k.locator(), '--batchSystem', 'kubernetes', '--', t.dir], {
      env: { ...k.env, ...mode },
    });
    expect(r.code).toBe(0);
    const lines = await traceLines(t.dir);
    const at = (l: string) => lines.indexOf(l);
    for (const c of ['root', 'A', 'B', 'A1', 'A2', 'A2f']) expect(at('start F')).toBeGreaterThan(at(`end ${c}`));
    expect(at('start A1')).toBeGreaterThan(at('end A'));
    // The mode is the one asked for: a worker Job per batch job, or a few executors for all.
    const creates = k.cluster.requestCounts()['create jobs'] ?? 0;
    const jobs = Number(/finished: (\d+) job\(s\) run/.exec(r.stderr)?.[1]);
    expect(jobs).toBe(7);
    // A pod per job: one Job each but the one chained (A2f runs in A2's pod). Executors: one, a
    // few more only if a job took over a second while others waited.
    if (mode.TOIL_KUBERNETES_EXECUTORS) expect(creates).toBeLessThanOrEqual(3);
    else expect(creates).toBe(6);
  }, 120_000);

  it('resolves promises with paths and forwarding, and moves files through the job store', async () => {
    const p = await toil(['run', workflow('promises.ts'), k.locator(), '--batchSystem', 'kubernetes'], { env: { ...k.env, ...mode } });
    expect(p.code).toBe(0);
    expect(JSON.parse(p.stdout)).toEqual({ sum: 50, fwd: 1005, text: 'made:50:1005', keys: ['fwd', 'sum', 'text'] });
    const { readFile, writeFile } = await import('node:fs/promises');
    const path = await import('node:path');
    await writeFile(path.join(t.dir, 'in.txt'), 'pods read this');
    const f = await toil(
      [
        'run',
        workflow('files.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--',
        path.join(t.dir, 'in.txt'),
        path.join(t.dir, 'out.txt'),
      ],
      { env: { ...k.env, ...mode } },
    );
    expect(f.code).toBe(0);
    expect(await readFile(path.join(t.dir, 'out.txt'), 'utf8')).toBe('PODS READ THIS');
  }, 120_000);

  it('mounts the host path cache and the AWS secret as the guide says', async () => {
    const path = await import('node:path');
    const { writeFile, readFile } = await import('node:fs/promises');
    const wf = path.join(t.dir, 'mounts.ts');
    await writeFile(
      wf,
      `import { defineJob } from 'toil-ts';
       import { readFileSync, writeFileSync, existsSync } from 'node:fs';
       const look = defineJob('look', async () => {
         writeFileSync('/var/lib/toil/seen-by-worker', 'yes');
         return { aws: existsSync('/root/.aws/credentials') && readFileSync('/root/.aws/credentials', 'utf8').includes('aws_access_key_id'), workdir: process.env.TOIL_WORKDIR };
       });
       export default function () { return look(); }`,
    );
    const r = await toil(['run', wf, k.locator(), '--batchSystem', 'kubernetes'], { env: { ...k.env, ...mode } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ aws: true, workdir: '/var/lib/toil/work' });
    const nodes = ['node-1', 'node-2'].map((n) => k.cluster.hostPathDir(n, '/data/scratch'));
    const seen = await Promise.all(nodes.map((d) => readFile(path.join(d, 'seen-by-worker'), 'utf8').catch(() => '')));
    expect(seen).toContain('yes');
  }, 120_000);

  it('runs many children and sums their promised values in a follow-on', async () => {
    const r = await toil(['run', workflow('../../examples/fanout.ts'), k.locator(), '--batchSystem', 'kubernetes', '--', '8'], {
      env: { ...k.env, ...mode },
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(140);
    expect(r.stderr).toMatch(/10 job\(s\) run/);
  }, 120_000);

  it('retries a failing job and then succeeds', async () => {
    const r = await toil(
      [
        'run',
        workflow('flaky.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--retryCount',
        '1',
        '--retryBackoff',
        '0.2',
        ...failsFirst({ traceDir: t.dir, times: 1 }),
      ],
      { env: { ...k.env, ...mode } },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('ok after 2');
    expect(await traceLines(t.dir)).toHaveLength(2);
    expect(r.stderr).toMatch(/retrying in/);
  }, 120_000);

  it('never runs a job whose predecessor failed, runs the independent ones, and keeps the store', async () => {
    const loc = k.locator();
    const r = await toil(['run', workflow('diamond.ts'), loc, '--batchSystem', 'kubernetes', '--retryCount', '0', '--', t.dir], {
      env: { ...k.env, ...mode },
    });
    expect(r.code).toBe(1);
    const lines = await traceLines(t.dir);
    for (const ran of ['run A', 'run B', 'run C']) expect(lines).toContain(ran);
    for (const not of ['run D', 'run F']) expect(lines).not.toContain(not);
    expect(r.stderr).toMatch(/1 job\(s\) failed, 2 job\(s\) did not run/);
    expect(r.stderr).toMatch(/something went wrong here/);
    const status = await toil(['status', loc, '--json'], { env: k.env });
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { counts: Record<string, number>; failed: Array<{ name: string }> };
    expect(s.counts).toEqual({ total: 5, done: 2, running: 0, pending: 2, failed: 1 });
    expect(s.failed.map((f) => f.name)).toEqual(['node']);
  }, 120_000);

  it('resumes after a failure with --restart, without running finished jobs again', async () => {
    const loc = k.locator();
    const env = { ...k.env, ...mode };
    const first = await toil(['run', workflow('restartable.ts'), loc, '--batchSystem', 'kubernetes', '--retryCount', '0', '--', t.dir], {
      env,
    });
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/middle is broken/);
    await writeFile(path.join(t.dir, 'fixed'), '');
    const second = await toil(['run', workflow('restartable.ts'), loc, '--batchSystem', 'kubernetes', '--restart'], { env });
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toBe('start>first');
    for (const [name, runs] of [
      ['first', 1],
      ['side', 1],
      ['middle', 2],
      ['last', 1],
    ] as const)
      expect(await t.count(name)).toBe(runs);
  }, 120_000);

  it('after the leader is SIGKILLed, --restart removes what it left and runs no job twice at once', async () => {
    const loc = k.locator();
    const env = { ...k.env, ...mode };
    const run = startToil(napsOnKubernetes(loc, { traceDir: t.dir, count: 2, napMs: 6_000 }), { env });
    await waitFor(async () => (await traceLines(t.dir)).filter((l) => l.startsWith('nap')).length >= 2, 60_000, 'naps to start');
    run.child.kill('SIGKILL');
    await run.done;
    // Its worker Jobs outlive it, as they would on a real cluster: a pod each, or the executors
    // running both naps.
    const left = k.leftoverJobs();
    if (mode.TOIL_KUBERNETES_EXECUTORS) expect(left).toBeGreaterThanOrEqual(1);
    else expect(left).toBe(2);
    const r = await toil(['run', workflow('slow.ts'), loc, '--batchSystem', 'kubernetes', '--restart'], { env });
    expect(r.stderr).toMatch(new RegExp(`deleting ${left} worker Job\\(s\\) left by an earlier leader`));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe(2);
    const lines = await traceLines(t.dir);
    expect(lines.filter((l) => l.startsWith('overlap'))).toEqual([]);
    expect(lines.filter((l) => l.startsWith('woke'))).toHaveLength(2);
    expect(k.leftoverJobs()).toBe(0);
  }, 180_000);

  it('fails a job that no node can take, naming what it asks for', async () => {
    const r = await toil(
      [
        'run',
        workflow('chain.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--kubernetesPodTimeout',
        '2',
        '--retryCount',
        '0',
        '--',
        'greedy',
      ],
      { env: { ...k.env, ...mode } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'greedy' \(greedy-[a-z0-9]+\)/);
    expect(r.stderr).toMatch(/no node could take the worker pod for 2s \(--kubernetesPodTimeout\); it asks for 64 cores/);
  }, 120_000);
});
