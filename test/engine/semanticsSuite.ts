/**
 * Workflow semantics, end to end through the real CLI: real leader and worker processes and a
 * file job store. One suite, run by semantics.test.ts as it is and by semanticsExecutors.test.ts
 * with jobs on executors: the engine's acceptance set must hold in both.
 */
import { describe, expect, it } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathExists, toil, traceLines, workflow, type RunResult } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { alwaysFails, failsFirst } from '../workflows/args.js';

/** The suite, with `env` given to every command (e.g. TOIL_KUBERNETES_EXECUTORS). */
export function semanticsSuite(env: NodeJS.ProcessEnv): void {
  const run = (args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> =>
    toil(args, { ...opts, env: { ...env, ...opts.env } });
  const t = useTempStore();
  const exists = pathExists;
  const count = t.count;

  describe('ordering', () => {
    it('runs children after their parent and follow-ons after the whole subtree, dynamic children included', async () => {
      const r = await run(['run', workflow('ordering.ts'), t.store, '--', t.dir]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe('root');
      const lines = await traceLines(t.dir);
      const at = (l: string) => {
        const i = lines.indexOf(l);
        expect(i).toBeGreaterThanOrEqual(0);
        return i;
      };
      for (const c of ['A', 'B']) expect(at(`start ${c}`)).toBeGreaterThan(at('end root'));
      for (const c of ['A1', 'A2']) expect(at(`start ${c}`)).toBeGreaterThan(at('end A'));
      expect(at('start A2f')).toBeGreaterThan(at('end A2'));
      for (const c of ['root', 'A', 'B', 'A1', 'A2', 'A2f']) expect(at('start F')).toBeGreaterThan(at(`end ${c}`));
      // The store is removed on success by default (--clean onSuccess).
      expect(await exists(t.store)).toBe(false);
    });
  });

  describe('promises', () => {
    it('resolves paths, forwarded values and promises in class fields', async () => {
      const r = await run(['run', workflow('promises.ts'), t.store]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ sum: 50, fwd: 1005, text: 'made:50:1005', keys: ['fwd', 'sum', 'text'] });
    });
  });

  describe('fan-out', () => {
    it('runs many children in parallel and sums their promised values in a follow-on', async () => {
      const n = 60;
      const r = await run(['run', workflow('../../examples/fanout.ts'), t.store, '--', String(n)]);
      expect(r.code).toBe(0);
      let expected = 0;
      for (let i = 0; i < n; i++) expected += i * i;
      expect(JSON.parse(r.stdout)).toBe(expected);
      expect(r.stderr).toMatch(/62 job\(s\) run/);
    });
  });

  describe('retries', () => {
    it('retries a failing job --retryCount times with growing backoff', async () => {
      const r = await run([
        'run',
        workflow('flaky.ts'),
        t.store,
        '--retryCount',
        '2',
        '--retryBackoff',
        '0.4',
        ...failsFirst({ traceDir: t.dir, times: 2 }),
      ]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe('ok after 3');
      const times = (await traceLines(t.dir)).map((l) => Number(l.split(' ')[2]));
      expect(times).toHaveLength(3);
      // Backoff: nominal 0.4 s then 0.8 s, jitter keeps each at least half of that.
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(200);
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(400);
      expect(r.stderr).toMatch(/retrying in/);
    });

    it('gives up after retryCount + 1 tries and names the job with its log', async () => {
      const r = await run(['run', workflow('flaky.ts'), t.store, '--retryBackoff', '0', ...alwaysFails({ traceDir: t.dir })]);
      expect(r.code).toBe(1);
      expect(await count('always')).toBe(2);
      expect(r.stderr).toMatch(/job 'always' \(always-[a-z0-9]+\)/);
      expect(r.stderr).toMatch(/\| always: attempt 2 about to fail/);
      expect(r.stderr).toMatch(/this job always fails/);
      // The store is kept after a failure, for --restart.
      expect(await exists(t.store)).toBe(true);
    });
  });

  describe('failure propagation', () => {
    it('never runs a job whose predecessor failed, and runs the independent ones', async () => {
      const r = await run(['run', workflow('diamond.ts'), t.store, '--retryCount', '0', '--', t.dir]);
      expect(r.code).toBe(1);
      const lines = await traceLines(t.dir);
      expect(lines).toContain('run A');
      expect(lines).toContain('run B');
      expect(lines).toContain('run C');
      expect(lines).not.toContain('run D');
      expect(lines).not.toContain('run F');
      expect(r.stderr).toMatch(/1 job\(s\) failed, 2 job\(s\) did not run/);
      expect(r.stderr).toMatch(/something went wrong here/);
      const status = await run(['status', t.store, '--json']);
      expect(status.code).toBe(0);
      const s = JSON.parse(status.stdout) as { counts: Record<string, number>; failed: Array<{ name: string }> };
      expect(s.counts).toEqual({ total: 5, done: 2, running: 0, pending: 2, failed: 1 });
      expect(s.failed.map((f) => f.name)).toEqual(['node']);
    });
  });

  describe('checkpoints', () => {
    it('reruns a checkpoint when a job below it fails for good', async () => {
      const r = await run(['run', workflow('checkpoint.ts'), t.store, '--retryBackoff', '0', '--clean', 'never', '--', t.dir]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe('child ok');
      // The first run's file went with it; the second run's is kept.
      const files = (await traceLines(t.dir)).filter((l) => l.startsWith('file ')).map((l) => l.slice(5));
      expect(files).toHaveLength(2);
      const { FileJobStore } = await import('../../src/jobstore/file/fileJobStore.js');
      const js = new FileJobStore(t.store);
      expect(await js.fileExists(files[0]!)).toBe(false);
      expect(await js.fileExists(files[1]!)).toBe(true);
      expect(await count('cp')).toBe(2);
      expect(await count('child')).toBe(3);
      expect(r.stderr).toMatch(/rerunning checkpoint/);
    });
  });

  describe('worker crashes', () => {
    it('fails only the job whose worker process died', async () => {
      const r = await run(['run', workflow('crash.ts'), t.store, '--retryCount', '0', '--', t.dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/job 'exiter'.*: the job called process\.exit\(7\)/);
      expect(r.stderr).toMatch(/job 'thrower'.*: the job crashed its process: uncaught Error: uncaught in a timer/);
      expect(r.stderr).toMatch(/2 job\(s\) failed/);
      const s = JSON.parse((await run(['status', t.store, '--json'])).stdout) as { counts: Record<string, number> };
      expect(s.counts.done).toBe(5);
    });
  });

  describe('files', () => {
    it('imports, passes, reads, deletes and exports files', async () => {
      const input = path.join(t.dir, 'in.txt');
      const output = path.join(t.dir, 'out', 'result.txt');
      await writeFile(input, 'hello files');
      const r = await run(['run', workflow('files.ts'), t.store, '--clean', 'never', '--', input, `file://${output}`]);
      expect(r.code).toBe(0);
      const value = JSON.parse(r.stdout) as { out: string; scratch: string; tmp: string };
      expect(await readFile(output, 'utf8')).toBe('HELLO FILES');
      // The job's temporary directory is gone; the scratch file was deleted by the follow-on.
      expect(await exists(value.tmp)).toBe(false);
      const { FileJobStore } = await import('../../src/jobstore/file/fileJobStore.js');
      const js = new FileJobStore(t.store);
      expect(await js.fileExists(value.out)).toBe(true);
      expect(await js.fileExists(value.scratch)).toBe(false);
    });
  });

  describe('programmatic use', () => {
    it('runs a workflow from a program with Toil.open and toil.start', async () => {
      const { spawn } = await import('node:child_process');
      const { ROOT } = await import('../helpers/run.js');
      const out = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'examples', 'programmatic.ts'), t.store, '20'], {
          cwd: ROOT,
          env: { ...process.env, NODE_OPTIONS: '' },
        });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.on('close', (code) => resolve({ code, stdout }));
      });
      expect(out.code).toBe(0);
      expect(out.stdout).toContain('sum of squares below 20: 2470');
      expect(await exists(t.store)).toBe(false);
    });
  });

  describe('logs', () => {
    it('--writeLogs copies each job log, failed ones included', async () => {
      const logs = path.join(t.dir, 'logs');
      const r = await run(['run', workflow('diamond.ts'), t.store, '--retryCount', '0', '--writeLogs', logs, '--', t.dir]);
      expect(r.code).toBe(1);
      const { readdir } = await import('node:fs/promises');
      const files = await readdir(logs);
      const failed = files.filter((f) => f.startsWith('node_'));
      expect(failed.length).toBe(1);
      expect(await readFile(path.join(logs, failed[0]!), 'utf8')).toMatch(/node B: something went wrong here[\s\S]*B failed on purpose/);
    });
    it('relays ctx.log lines to the leader log, and status is readable as text', async () => {
      const r = await run(['run', workflow('../../examples/helloworld.ts'), t.store, '--clean', 'never', '--', 'Ada']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe('Hello, Ada');
      expect(r.stderr).toMatch(/\[hello hello-[a-z0-9]+\] Hello, Ada/);
      const s = await run(['status', t.store]);
      expect(s.stdout).toMatch(/jobs: +1 total, 1 done, 0 running, 0 pending, 0 failed/);
      expect(s.stdout).toMatch(/\(completed\)/);
    });
  });

  describe('chaining and resources', () => {
    it('runs a chain of single successors in one batch job', async () => {
      const r = await run(['run', workflow('chain.ts'), t.store, '--logDebug', '--', '6']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toBe('012345');
      expect(r.stderr).toMatch(/6 job\(s\) run/);
      expect(r.stderr.match(/issued job/g)).toHaveLength(1);
    });
    it('does not chain into a successor that needs more than the worker got', async () => {
      const r = await run(['run', workflow('chain.ts'), t.store, '--logDebug', '--', 'bigger']);
      expect(r.code).toBe(0);
      expect(r.stderr.match(/issued job/g)).toHaveLength(2);
    });
    it('refuses a job that asks for more than the machine has, naming the limit', async () => {
      const started = Date.now();
      const r = await run(['run', workflow('chain.ts'), t.store, '--maxCores', '2', '--', 'greedy']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/job 'greedy' \(greedy-[a-z0-9]+\) asks for 64 cores, but at most 2 are available \(--maxCores\)/);
      // No retries for a job that can never fit.
      expect(r.stderr).not.toMatch(/retrying/);
      expect(Date.now() - started).toBeLessThan(15000);
    });
  });
}
