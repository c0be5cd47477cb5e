/**
 * Executor mode on this machine (single_machine runs the executors): every ending explained per
 * job, and the pool's size following the queue. Real leader, executor and worker processes and a
 * file job store; the same code runs executors in pods (test/kubernetes/executors.test.ts).
 */
import { describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startToil, toil, traceLines, waitFor, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';

const t = useTempStore();
const EXECUTORS = { TOIL_KUBERNETES_EXECUTORS: 'true' };

describe('executor mode on this machine', () => {
  it('kills a job over its memory alone; its neighbours on the same executor finish', async () => {
    const r = await toil(['run', workflow('executors.ts'), t.store, '--retryCount', '0', '--', 'memory', t.dir], { env: EXECUTORS });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'hog' \(hog-[a-z0-9]+\): the job used [\d.]+ [MG]iB of memory, over the 256 MiB it asked for, and was killed \(alone/,
    );
    expect(r.stderr).toMatch(/1 job\(s\) failed/);
    const s = JSON.parse((await toil(['status', t.store, '--json'])).stdout) as { counts: Record<string, number> };
    // The root and both neighbours are done; each job ran once.
    expect(s.counts.done).toBe(3);
    expect([await t.count('n1'), await t.count('n2'), await t.count('hog')]).toEqual([1, 1, 1]);
  }, 120_000);

  it('kills a job over its disk alone; its neighbours on the same executor finish', async () => {
    const r = await toil(['run', workflow('executors.ts'), t.store, '--retryCount', '0', '--', 'disk', t.dir], { env: EXECUTORS });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'scribbler' \(scribbler-[a-z0-9]+\): out of disk: the job held [\d.]+ MiB in its temporary directory, over the 256 MiB it was given, and was killed \(alone/,
    );
    const s = JSON.parse((await toil(['status', t.store, '--json'])).stdout) as { counts: Record<string, number> };
    expect(s.counts.done).toBe(3);
    expect([await t.count('n1'), await t.count('n2'), await t.count('scribbler')]).toEqual([1, 1, 1]);
  }, 120_000);

  it('re-runs the three jobs of an executor that was killed, none charged a try', async () => {
    const run = startToil(['run', workflow('executors.ts'), t.store, '--retryCount', '0', '--', 'lose', t.dir], { env: EXECUTORS });
    const starts = async (n: number) => (await traceLines(t.dir)).filter((l) => l.startsWith('start ') && l.split(' ')[2] === String(n));
    await waitFor(async () => (await starts(1)).length === 3, 60_000, 'three jobs started on an executor');
    const executors = new Set((await starts(1)).map((l) => Number(l.split(' ')[3])));
    expect(executors.size).toBe(1);
    process.kill([...executors][0]!, 'SIGKILL');
    await waitFor(async () => (await starts(2)).length === 3, 60_000, 'the three jobs started again');
    await writeFile(path.join(t.dir, 'go'), '');
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(r.stderr.match(/its executor \S+ ended .*; not counted against its tries/g)).toHaveLength(3);
    for (const w of ['w1', 'w2', 'w3']) expect(await t.count(w)).toBe(2);
  }, 180_000);

  it('shrinks the pool to none while nothing runs, and grows it again', async () => {
    const r = await toil(
      [
        'run',
        workflow('executors.ts'),
        t.store,
        '--logDebug',
        '--retryBackoff',
        '8',
        '--kubernetesExecutorIdle',
        '1',
        '--',
        'retry',
        t.dir,
      ],
      { env: EXECUTORS },
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toBe('second attempt');
    const lines = r.stderr.split('\n');
    const at = (re: RegExp, from = 0) => lines.findIndex((l, i) => i >= from && re.test(l));
    const stopped = at(/executor \S+: idle, told to stop/);
    const gone = at(/executor \S+ ended \(succeeded/, stopped);
    const regrown = at(/executor \S+: \d+ slot\(s\) of/, at(/job 'flaky'.*failed: .*retrying in/));
    // One executor, told to stop and gone while the retry waited; then a new one for the retry.
    expect([stopped >= 0, gone >= 0, regrown > gone]).toEqual([true, true, true]);
    expect(lines.slice(0, regrown).filter((l) => /executor \S+: \d+ slot\(s\) of/.test(l))).toHaveLength(1);
  }, 120_000);
});
