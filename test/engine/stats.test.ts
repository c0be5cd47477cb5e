/**
 * --stats and --trace on this machine, and `toil stats`/`toil report` on what they keep: known
 * work measured within the tolerances of test/helpers/measured.ts; a workflow with retries and
 * a failure counted, with the advice line; and the clear one-line refusals (exit 2, nothing
 * written) for a store run without --stats, a store that does not exist, and an output that
 * cannot be written. (test/kubernetes/stats.test.ts: the same measurements in worker pods.)
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { expectKnownWork, readStatsFile } from '../helpers/measured.js';
import type { StatsSummary } from '../../src/cli/statsSummary.js';

const t = useTempStore();

describe('--stats and --trace', () => {
  it('measure known work: CPU with children, peak memory per job, sleep, bytes written; the trace has a line per attempt', async () => {
    const trace = path.join(t.dir, 'trace.tsv');
    const r = await toil(['run', workflow('measured.ts'), t.store, '--stats', '--trace', trace, '--maxCores', '2', '--no-typecheck']);
    expect(r.stderr).toContain('statistics of 5 attempt(s) written to');
    expect(r.code).toBe(0);
    // --clean onSuccess deleted the store; the stats file next to it is left
    expect(existsSync(t.store)).toBe(false);
    const data = await readStatsFile(`${t.store}.stats.json`);
    const { burn, nap } = expectKnownWork(data);
    // Where each attempt ran, and when its worker process started and ended it.
    for (const a of data.attempts) {
      expect(a.place).toEqual({
        node: expect.any(String),
        pid: expect.any(Number),
        phases: { started: expect.any(Number), finished: expect.any(Number) },
      });
      expect(a.place!.phases!.finished!).toBeGreaterThanOrEqual(a.place!.phases!.started!);
    }

    const [header, ...lines] = (await readFile(trace, 'utf8')).trimEnd().split('\n');
    const cols = header!.split('\t');
    expect(cols.slice(0, 5)).toEqual(['batch_id', 'job_id', 'name', 'attempt', 'status']);
    expect(lines).toHaveLength(5);
    const rows = lines.map((l) => Object.fromEntries(l.split('\t').map((v, i) => [cols[i]!, v])));
    const row = (name: string) => rows.find((x) => x['name'] === name)!;
    expect(Number(row('burn')['cpu_s'])).toBeCloseTo(burn.cpuSeconds!, 2);
    expect(Number(row('nap')['realtime_s'])).toBeCloseTo(nap.wallSeconds!, 2);
    expect(row('scribble')['write_bytes']).toBe('50000000');
    expect(Date.parse(row('nap')['start']!)).not.toBeNaN();
  }, 90_000);

  it('toil stats: a workflow with retries and a failure, counted per job name, with the advice line', async () => {
    const r = await toil([
      'run',
      workflow('stats-mix.ts'),
      t.store,
      '--stats',
      '--retryCount',
      '1',
      '--retryBackoff',
      '0',
      '--no-typecheck',
      '--',
      t.dir,
    ]);
    expect(r.code).toBe(1);
    const json = await toil(['stats', t.store, '--format', 'json']);
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout) as StatsSummary;
    const byName = Object.fromEntries(s.jobNames.map((j) => [j.name, j]));
    expect(byName['count-chunk']).toMatchObject({ jobs: 4, attempts: 4, failedAttempts: 0, failedJobs: 0, retries: 0 });
    expect(byName['flaky']).toMatchObject({ jobs: 1, attempts: 2, failedAttempts: 1, failedJobs: 0, retries: 1 });
    expect(byName['always']).toMatchObject({ jobs: 1, attempts: 2, failedAttempts: 2, failedJobs: 1, retries: 1 });
    expect(byName['count-chunk']!.wallSeconds!.max).toBeGreaterThanOrEqual(byName['count-chunk']!.wallSeconds!.median);
    expect(s.totals).toMatchObject({ jobs: 7, attempts: 9, failedAttempts: 3, failedJobs: 1 });
    const advice = /^count-chunk asked for 2\.0 GiB of memory and used at most [\d.]+ MiB in 4 attempts: (\d+)Mi would do/;
    expect(byName['count-chunk']!.advice).toMatch(advice);
    expect(Number(advice.exec(byName['count-chunk']!.advice!)![1])).toBeLessThanOrEqual(512);

    // each failed attempt keeps why, as the leader told it, and its log's last lines
    const always = (await readStatsFile(`${t.store}.stats.json`)).attempts.filter((a) => a.jobName === 'always');
    expect(always.map((a) => [a.attempt, a.status, a.message])).toEqual([
      [1, 'failed', 'the job threw Error: this job always fails'],
      [2, 'failed', 'the job threw Error: this job always fails'],
    ]);
    expect(always[1]!.logTail).toContain('always: about to fail <script>alert(1)</script>');

    const text = await toil(['stats', `${t.store}.stats.json`]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/jobs: 7, attempts: 9, failed attempts: 3, jobs failed for good: 1/);
    expect(text.stdout).toMatch(/^flaky +1 +2 +1 /m);
    // the advice comes last, a line per job name (in the table's order: the most wall time first)
    expect(text.stdout).toMatch(/^Advice:\n(?: {2}\S.*\n)* {2}count-chunk asked for 2\.0 GiB of memory .* would do.*\n?(?: {2}\S.*\n?)*$/m);
  }, 90_000);

  it('toil stats and toil report refuse, in one line with exit 2 and nothing written: no --stats, no store, an output that cannot be written', async () => {
    const plain = await toil(['run', workflow('stats-mix.ts'), t.store, '--retryCount', '0', '--no-typecheck', '--', t.dir]);
    expect(plain.code).toBe(1);
    const report = path.join(t.dir, 'report.html');
    const cases: Array<[string[], RegExp]> = [
      [['stats', t.store], /^toil: job store file:\S+ holds no statistics: run the workflow with --stats to keep them\n$/],
      [['report', t.store, '-o', report], /^toil: job store file:\S+ holds no statistics: run the workflow with --stats to keep them\n$/],
      [['stats', path.join(t.dir, 'nowhere')], /^toil: job store file:\S+nowhere does not exist \(nor is \S+ a stats file\)\n$/],
      [['report', path.join(t.dir, 'nowhere'), '-o', report], /^toil: job store file:\S+nowhere does not exist/],
      [
        ['stats', t.store, '-o', path.join(t.dir, 'no-dir', 'stats.txt')],
        /^toil: --output \S+stats\.txt: cannot be written \(no writable directory \S+no-dir\)\n$/,
      ],
      [['report', t.store, '-o', path.join(t.dir, 'no-dir', 'r.html')], /^toil: --output \S+r\.html: cannot be written/],
      [['report', t.store, '-o', t.dir], /^toil: --output \S+: is a directory\n$/],
    ];
    const results = await Promise.all(cases.map(([args]) => toil(args)));
    cases.forEach(([args, message], i) => {
      const r = results[i]!;
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({
        args,
        code: 2,
        stderr: expect.stringMatching(message),
        stdout: '',
      });
    });
    // a stats file that is not one
    await writeFile(path.join(t.dir, 'bogus.json'), '{"format":"other"}');
    const bogus = await toil(['stats', path.join(t.dir, 'bogus.json')]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toMatch(/^toil: \S+bogus\.json \(not a toil-ts stats file\?\) is invalid: /);
    expect((await readdir(t.dir)).filter((f) => /report|\.partial|stats\.txt/.test(f))).toEqual([]);
  }, 90_000);
});
