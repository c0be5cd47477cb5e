/** Restarts, leases, kill and bad input, through the real CLI. */
import { describe, expect, it } from '@jest/globals';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openJobStore } from '../../src/jobstore/open.js';
import { pathExists, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { naps, alwaysFails } from '../workflows/args.js';

const t = useTempStore();
const exists = pathExists;
const count = t.count;

describe('restart', () => {
  it('resumes after a failure without rerunning finished jobs', async () => {
    const first = await toil(['run', workflow('restartable.ts'), t.store, '--retryCount', '0', '--', t.dir]);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/middle is broken/);
    expect(first.stderr).toMatch(/--restart/);
    await writeFile(path.join(t.dir, 'fixed'), '');
    const second = await toil(['run', workflow('restartable.ts'), t.store, '--restart']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toBe('start>first');
    expect(await count('first')).toBe(1);
    expect(await count('side')).toBe(1);
    expect(await count('middle')).toBe(2);
    expect(await count('last')).toBe(1);
  });

  it('resumes after the leader is SIGKILLed mid-workflow, with the same result', async () => {
    await writeFile(path.join(t.dir, 'sleep'), '');
    const run = startToil(['run', workflow('restartable.ts'), t.store, '--', t.dir]);
    await waitFor(async () => (await traceLines(t.dir)).includes('run middle'), 30000, 'middle to start');
    run.child.kill('SIGKILL');
    await run.done;
    // The killed leader's workers die with it: nothing finishes 'middle' behind our back.
    await new Promise((r) => setTimeout(r, 300));
    const second = await toil(['run', workflow('restartable.ts'), t.store, '--restart']);
    expect(second.stderr).toMatch(/restarting workflow/);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toBe('start>first');
    expect(await count('first')).toBe(1);
    expect(await count('side')).toBe(1);
    expect(await count('last')).toBe(1);
    expect(await count('middle')).toBe(2);
  });

  it('picks up edited workflow code on restart', async () => {
    const wfFile = path.join(t.dir, 'edit.ts');
    const src = (msg: string, fail: boolean) => `
      import { defineJob } from 'toil-ts';
      const a = defineJob('a', async () => ${JSON.stringify(msg)});
      const b = defineJob('b', async (_ctx, x: string) => { ${fail ? "throw new Error('old code');" : ''} return x + '+new'; });
      export default function workflow() { const j = a(); j.addChild(b(j.rv())); return j.addFollowOn(b(j.rv())) && j; }
    `;
    await writeFile(wfFile, src('v1', true));
    const first = await toil(['run', wfFile, t.store, '--retryCount', '0']);
    expect(first.code).toBe(1);
    await writeFile(wfFile, src('v2', false));
    const second = await toil(['run', wfFile, t.store, '--restart', '--clean', 'never']);
    expect(second.code).toBe(0);
    // 'a' ran with the old code and is not run again.
    expect(JSON.parse(second.stdout)).toBe('v1');
    expect(second.stderr).toMatch(/workflow code changed/);
  });
});

describe('a store that cannot be finished', () => {
  it('a done job naming a successor whose record is gone: the restart says so and exits, instead of waiting', async () => {
    const first = await toil(['run', workflow('restartable.ts'), t.store, '--retryCount', '0', '--', t.dir]);
    expect(first.code).toBe(1);
    const store = await openJobStore(t.store);
    const records = [];
    for await (const { value } of store.listJobs()) records.push(value);
    const failed = records.find((r) => r.state === 'failed')!;
    const parent = records.find((r) => r.children.includes(failed.id))!;
    expect(parent.state).toBe('done');
    await store.deleteJob(failed.id);
    await writeFile(path.join(t.dir, 'fixed'), '');
    const run = startToil(['run', workflow('restartable.ts'), t.store, '--restart']);
    const hung = setTimeout(() => run.child.kill('SIGKILL'), 60_000);
    const r = await run.done;
    clearTimeout(hung);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `the workflow in file:${t.store} can never finish: job 'stage' (${parent.id}) is done and names ${failed.id}, which do not exist`,
    );
  });
});

describe('one leader per job store', () => {
  it('refuses a second leader while the first runs, and toil kill stops the first', async () => {
    const run = startToil(['run', workflow('slow.ts'), t.store, ...naps({ traceDir: t.dir, count: 2, napMs: 20_000 })]);
    await waitFor(async () => (await traceLines(t.dir)).length >= 1, 30000, 'a nap to start');
    const second = await toil(['run', workflow('slow.ts'), t.store, '--restart']);
    expect(second.code).toBe(2);
    expect(second.stderr).toMatch(/in use by another leader \(pid \d+/);
    const status = await toil(['status', t.store]);
    expect(status.stdout).toMatch(/leader: +running \(pid/);
    const kill = await toil(['kill', t.store]);
    expect(kill.code).toBe(0);
    const started = Date.now();
    const first = await run.done;
    expect(Date.now() - started).toBeLessThan(10000);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/stopped by 'toil kill'/);
    // The store is kept, and a restart after a kill works.
    expect(await exists(t.store)).toBe(true);
    const after = await toil(['status', t.store, '--json']);
    expect(JSON.parse(after.stdout).leader).toBeNull();
  });

  it('refuses to start a new workflow in an existing store', async () => {
    const first = await toil(['run', workflow('flaky.ts'), t.store, '--retryCount', '0', ...alwaysFails({ traceDir: t.dir })]);
    expect(first.code).toBe(1);
    const again = await toil(['run', workflow('flaky.ts'), t.store, ...alwaysFails({ traceDir: t.dir })]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists: use --restart/);
    const clean = await toil(['clean', t.store]);
    expect(clean.code).toBe(0);
    expect(await exists(t.store)).toBe(false);
  });
});

describe('bad input exits 2 with one clear line and creates nothing', () => {
  const cases: Array<[string, () => string[], RegExp]> = [
    [
      'an unknown option',
      () => ['run', workflow('../../examples/fanout.ts'), t.store, '--noSuchOption'],
      /unknown option '--noSuchOption'/,
    ],
    ['a bad number', () => ['run', workflow('../../examples/fanout.ts'), t.store, '--retryCount', 'lots'], /--retryCount/],
    [
      'a bad size',
      () => ['run', workflow('../../examples/fanout.ts'), t.store, '--defaultMemory', '12 parsecs'],
      /--defaultMemory.*not a size/,
    ],
    ['a bad choice', () => ['run', workflow('../../examples/fanout.ts'), t.store, '--batchSystem', 'slurm'], /--batchSystem/],
    ['a bad locator', () => ['run', workflow('../../examples/fanout.ts'), 'aws:moon-base-1:x'], /invalid AWS (region|job t.store name)/],
    ['a missing workflow file', () => ['run', path.join(t.dir, 'nope.ts'), t.store], /workflow file not found/],
    ['a workflow without a default export', () => ['run', workflow('no-default.ts'), t.store], /has no default export/],
    ['a workflow that does not compile', () => ['run', path.join(t.dir, 'broken.ts'), t.store], /cannot compile workflow/],
    ['a graph where a follow-on waits on itself', () => ['run', workflow('bad-graph.ts'), t.store], /would wait for itself/],
    [
      'an argument JSON cannot carry',
      () => ['run', workflow('bad-arg.ts'), t.store],
      /argument 1 of job 'when' is not JSON-serialisable: the value itself is a Date/,
    ],
    ['restarting a store that does not exist', () => ['run', workflow('../../examples/fanout.ts'), t.store, '--restart'], /does not exist/],
  ];
  it.each(cases)('%s', async (_what, args, message) => {
    await writeFile(path.join(t.dir, 'broken.ts'), 'export default function ( {');
    const r = await toil(args());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('(run with --help')).length,
    ).toBe(1);
    expect(r.stdout).toBe('');
    expect(await exists(t.store)).toBe(false);
    expect((await readdir(t.dir)).filter((n) => n !== 'broken.ts')).toEqual([]);
  });
});

describe('help', () => {
  it('lists every Toil option', async () => {
    const r = await toil(['run', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--batchSystem',
      '--restart',
      '--retryCount',
      '--clean',
      '--logLevel',
      '--logInfo',
      '--logDebug',
      '--logCritical',
      '--disableCaching',
      '--maxCores',
      '--maxMemory',
      '--maxDisk',
      '--maxJobs',
      '--defaultCores',
      '--defaultMemory',
      '--defaultDisk',
      '--workDir',
      '--writeLogs',
      '--kubernetesHostPath',
      '--kubernetesOwner',
      '--kubernetesServiceAccount',
      '--kubernetesPodTimeout',
    ]) {
      expect(r.stdout).toContain(opt);
    }
  });
});
