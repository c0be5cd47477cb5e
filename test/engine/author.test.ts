/**
 * What a workflow author meets first, through the real CLI: graph errors that name the jobs,
 * output kept when a job ends its process, restarts that keep the first run's options, exit
 * codes for bad input, honest messages about the store, and status during a run.
 */
import { describe, expect, it } from '@jest/globals';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathExists, startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { naps, alwaysFails } from '../workflows/args.js';

const t = useTempStore();

/** The lines of stderr that are not commander's hint. */
function lines(stderr: string): string[] {
  return stderr
    .trim()
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('(run with --help'));
}

describe('graph errors', () => {
  it('names the jobs of a cycle of children', async () => {
    const r = await toil(['run', workflow('cycle.ts'), t.store]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the job graph has a cycle: 's' \(s-[a-z0-9]+\) → 's' \(s-[a-z0-9]+\) → 's' \(s-[a-z0-9]+\)/);
    expect(await pathExists(t.store)).toBe(false);
  });
});

describe('bad input exits 2', () => {
  it.each([
    ['a size that is not one', 'memory', /job 'j': memory: .*'2 gigs'/],
    ['an unregistered job class', 'class', /Unregistered is not registered: call Job\.register\(Unregistered, 'a-name'\)/],
  ])('%s', async (_what, arg, message) => {
    const r = await toil(['run', workflow('bad-input.ts'), t.store, '--', arg]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(await pathExists(t.store)).toBe(false);
  });
});

describe('a job that calls process.exit', () => {
  it('keeps what it printed: in the failure summary, in --writeLogs and in toil status', async () => {
    const logs = path.join(t.dir, 'logs');
    const r = await toil(['run', workflow('exit-output.ts'), t.store, '--retryCount', '0', '--writeLogs', logs]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'wrapper' \(wrapper-[a-z0-9]+\): the job called process\.exit\(3\)/);
    expect(r.stderr).toMatch(/\| samtools: input file is truncated/);
    expect(r.stderr).toMatch(/\| reading sample\.bam/);
    const files = await readdir(logs);
    expect(files.filter((f) => f.startsWith('wrapper_'))).toHaveLength(1);
    expect(await readFile(path.join(logs, files[0]!), 'utf8')).toMatch(/reading sample\.bam\n[\s\S]*samtools: input file is truncated/);
    const status = await toil(['status', t.store]);
    expect(status.stdout).toMatch(/\| samtools: input file is truncated/);
  });
});

describe('failure wording', () => {
  it('says that the job threw, message first, and the retry warning shows the message then the stack', async () => {
    const r = await toil(['run', workflow('flaky.ts'), t.store, '--retryBackoff', '0', ...alwaysFails({ traceDir: t.dir })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /WARNING +job 'always' \(always-[a-z0-9]+\) failed: the job threw Error: this job always fails; retrying in 0\.0s \(1 try left\)\n +\| +at .*flaky\.ts:\d+:\d+/,
    );
    expect(r.stderr).toMatch(/job 'always' \(always-[a-z0-9]+\): the job threw Error: this job always fails\n/);
    expect(r.stderr).not.toMatch(/exited with code 1/);
  });
});

describe('restart', () => {
  it("keeps the first run's options, lets flags override them, and refuses new workflow arguments", async () => {
    const first = await toil(['run', workflow('restartable.ts'), t.store, '--clean', 'never', '--retryCount', '0', '--', t.dir]);
    expect(first.code).toBe(1);
    const moved = await toil(['run', workflow('restartable.ts'), t.store, '--restart', '--', path.join(t.dir, 'elsewhere')]);
    expect(moved.code).toBe(2);
    expect(moved.stderr).toMatch(/--restart resumes the workflow with the arguments of its first run \(".*"\); it cannot take new ones/);
    expect(lines(moved.stderr)).toHaveLength(1);
    await writeFile(path.join(t.dir, 'fixed'), '');
    // The same arguments again are no change.
    const second = await toil(['run', workflow('restartable.ts'), t.store, '--restart', '--retryCount', '2', '--', t.dir]);
    expect(second.code).toBe(0);
    expect(second.stderr).toMatch(/options of the first run: (--clean never, --retryCount 0|--retryCount 0, --clean never);/);
    expect(second.stderr).toMatch(/overridden at this restart: --retryCount 2 \(was 0\)/);
    // --clean never was kept: the store is still there.
    expect(await pathExists(t.store)).toBe(true);
  });
});

describe('--clean and the failure summary', () => {
  it('does not promise a --restart when --clean always deleted the store', async () => {
    const r = await toil([
      'run',
      workflow('flaky.ts'),
      t.store,
      '--retryCount',
      '0',
      '--clean',
      'always',
      ...alwaysFails({ traceDir: t.dir }),
    ]);
    expect(r.code).toBe(1);
    expect(await pathExists(t.store)).toBe(false);
    expect(r.stderr).not.toMatch(/is kept/);
    expect(r.stderr).not.toMatch(/--restart/);
    expect(r.stderr).toMatch(/the job store .* was deleted \(--clean always\)/);
  });
});

describe('toil status during a run', () => {
  it('shows the running jobs', async () => {
    const run = startToil(['run', workflow('slow.ts'), t.store, '--maxJobs', '2', ...naps({ traceDir: t.dir, count: 4, napMs: 20_000 })]);
    try {
      await waitFor(async () => (await traceLines(t.dir)).filter((l) => l.startsWith('nap ')).length >= 2, 30000, 'two naps to start');
      let text = '';
      await waitFor(
        async () => {
          text = (await toil(['status', t.store])).stdout;
          return /2 running/.test(text);
        },
        5000,
        'status to show the running jobs',
      ).catch(() => undefined);
      expect(text).toMatch(/jobs: +5 total, 1 done, 2 running, 2 pending, 0 failed/);
      const json = JSON.parse((await toil(['status', t.store, '--json'])).stdout) as {
        counts: Record<string, number>;
        issued: Array<{ name: string }>;
      };
      expect(json.counts).toEqual({ total: 5, done: 1, running: 2, pending: 2, failed: 0 });
      expect(json.issued.map((j) => j.name)).toEqual(['nap', 'nap']);
    } finally {
      await toil(['kill', t.store]);
      await run.done;
    }
  });
});

describe('options are strict', () => {
  it.each([
    ['--disableCaching yes', () => ['--disableCaching', 'yes'], /--disableCaching: expected true or false \(got 'yes'\)/],
    [
      'a --workDir that does not exist',
      () => ['--workDir', path.join(t.dir, 'missing')],
      /--workDir: no such directory: .*missing \(create it first/,
    ],
  ])('%s exits 2 and creates nothing', async (_what, args, message) => {
    const r = await toil(['run', workflow('../../examples/helloworld.ts'), t.store, ...args()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(await readdir(t.dir)).toEqual([]);
  });
});

describe('sizes', () => {
  it('says why --maxMemory 2GB refuses a job that asks for the default 2Gi', async () => {
    const r = await toil(['run', workflow('../../examples/fanout.ts'), t.store, '--maxMemory', '2GB', '--', '3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /asks for 2\.0 GiB of memory, but at most 1\.9 GiB is available \(--maxMemory\); the job did not say, so it asks for --defaultMemory \(2Gi unless set\).*G is 10⁹ bytes, Gi is 2³⁰/,
    );
  });
});

describe('type checking', () => {
  it('refuses a workflow with type errors (exit 2, file:line:col and the message, nothing created); --no-typecheck runs it', async () => {
    const file = path.join(t.dir, 'typo.ts');
    await writeFile(
      file,
      [
        "import { defineJob, type WorkflowContext } from 'toil-ts';",
        "const twice = defineJob('twice', async (_ctx, n: number) => [n, n]);",
        'export default function workflow(_wf: WorkflowContext) {',
        "  const n: number = 'not a number';",
        '  return twice(n);',
        '}',
        '',
      ].join('\n'),
    );
    const r = await toil(['run', 'typo.ts', t.store], { cwd: t.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^toil: workflow typo\.ts does not type-check \(1 error; --no-typecheck runs it anyway\):\n {2}typo\.ts:4:9 Type 'string' is not assignable to type 'number'\. \(TS2322\)\n$/,
    );
    expect(await readdir(t.dir)).toEqual(['typo.ts']);
    const unchecked = await toil(['run', 'typo.ts', t.store, '--no-typecheck'], { cwd: t.dir });
    expect(unchecked.code).toBe(0);
    expect(JSON.parse(unchecked.stdout)).toEqual(['not a number', 'not a number']);
  });
});

describe('the README examples', () => {
  it('the class form, an async workflow function and promises in fields (examples/classjobs.ts)', async () => {
    const r = await toil(['run', workflow('../../examples/classjobs.ts'), t.store, '--', 'examples/poem.txt']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ lines: 4, words: 20 });
    expect(r.stderr).toMatch(/6 job\(s\) run/);
    const usage = await toil(['run', workflow('../../examples/classjobs.ts'), t.store]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^toil: give a text file after --/m);
  });
});
