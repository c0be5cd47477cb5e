/**
 * The leader's lease, through the real CLI: a leader that cannot renew its lease stops issuing
 * work and exits before a successor could take over, and rides out a renewal slower than one
 * attempt; a lease lost after the leader's loop stops the end of the run (no export, no record,
 * no --clean); the holder's wall clock does not matter, only each process's monotonic time; a
 * leader in another PID namespace (as in a container) is judged alive or dead by its lock, never
 * by its pid; and a change to the store without the lease is refused.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BIN, ROOT, startToil, toil, traceLines, waitFor, workflow, type RunResult } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { naps } from '../workflows/args.js';
import { useTestS3 } from '../s3/useTestS3.js';
import { FencedJobStore } from '../../src/jobstore/fenced.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { LEASE_FILE, Lease, readLease } from '../../src/leader/lease.js';
import type { JobRecord } from '../../src/job/types.js';
import { sampleRecord } from '../jobstore/conformance.js';
import { processTree } from '../../src/batch/processMemory.js';

const t = useTempStore();

function aliveHere(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

/** Waits for a run to end; kills it (and says so) if it has not ended within `ms`. */
async function endWithin(run: ReturnType<typeof startToil>, ms: number): Promise<RunResult & { timedOut: boolean }> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    run.child.kill('SIGKILL');
  }, ms);
  const r = await run.done;
  clearTimeout(timer);
  return { ...r, timedOut };
}

/** The monotonic time at which `run`'s log (stderr) first matches `pattern`; rejects if it ends first, or after `ms`. */
function whenLogged(run: ReturnType<typeof startToil>, pattern: RegExp, ms = 60_000): Promise<number> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern} in the log`)), ms);
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (!pattern.test(seen)) return;
      clearTimeout(timer);
      run.child.stderr!.off('data', onData);
      resolve(performance.now());
    };
    run.child.stderr!.on('data', onData);
    void run.done.then((r) => {
      clearTimeout(timer);
      reject(new Error(`the run ended (code ${r.code}) before ${pattern} was in its log:\n${r.stderr}`));
    });
  });
}

/**
 * `toil run` in a new PID namespace (unshare --pid --fork), as in a container: with `pid1` the
 * leader is the namespace's pid 1; otherwise a pid that comes after 150 others there.
 */
function leaderInPidNamespace(args: string[], opts: { pid1: boolean }): ReturnType<typeof spawn> {
  const cmd = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
  const inner = opts.pid1
    ? ['--kill-child', process.execPath, BIN, ...args]
    : ['--kill-child', 'sh', '-c', `for i in $(seq 150); do /bin/true; done; ${cmd}`];
  return spawn('unshare', ['--pid', '--fork', ...inner], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' }, stdio: 'ignore' });
}

/** Whether any process is in the PID namespace `ns`. */
async function anyProcessIn(ns: string): Promise<boolean> {
  for (const pid of await readdir('/proc')) {
    if (/^\d+$/.test(pid) && (await readlink(`/proc/${pid}/ns/pid`).catch(() => '')) === ns) return true;
  }
  return false;
}

/**
 * Kills a leader started by {@link leaderInPidNamespace} and waits until its namespace is empty:
 * its workers still writing into the test's directory would race the directory's removal.
 */
async function killNamespace(unshare: ReturnType<typeof spawn>): Promise<void> {
  // the namespace's first process: unshare's child
  const init = processTree(unshare.pid!)[1];
  const ns = init === undefined ? undefined : await readlink(`/proc/${init}/ns/pid`).catch(() => undefined);
  const exited = unshare.exitCode !== null || unshare.signalCode !== null ? Promise.resolve() : new Promise((r) => unshare.once('exit', r));
  unshare.kill('SIGKILL');
  await exited;
  if (ns) await waitFor(async () => !(await anyProcessIn(ns)), 20_000, "the leader's PID namespace to empty");
}

async function leaseOf(store: string): Promise<{ pid: number; expiresAt: number }> {
  let lease: Awaited<ReturnType<typeof readLease>>;
  await waitFor(async () => (lease = await readLease(await openJobStore(store))) !== undefined, 30_000, 'the lease');
  return lease!.body;
}

describe('lease fencing', () => {
  const s3 = useTestS3();
  let n = 0;
  const locator = () => `aws:us-east-1:lease-${process.pid}-${++n}`;
  /** slow.ts on a new store, two naps at a time, with a lease of `leaseSeconds`. */
  const napsLeased = (leaseSeconds: number, nap: { count: number; napMs: number }, ...options: string[]) =>
    startToil([
      'run',
      workflow('slow.ts'),
      locator(),
      '--maxJobs',
      '2',
      '--leaseSeconds',
      String(leaseSeconds),
      ...options,
      ...naps({ traceDir: t.dir, ...nap }),
    ]);

  it('a leader that cannot renew its lease stops issuing work and exits before it expires', async () => {
    const leaseSeconds = 6;
    const run = napsLeased(leaseSeconds, { count: 40, napMs: 1500 }, '--logDebug');
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    // The job store stops answering lease renewals; everything else still works, so only
    // fencing can stop the leader from going on.
    await s3.server.setFaults({ hangPutMatch: 'leader-lease', hangMs: 600_000 });
    const cut = Date.now();
    const r = await endWithin(run, 90_000);
    await s3.server.setFaults({});
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toMatch(
      /lost the leader lease on aws:us-east-1:lease-[\d-]+: it could not be renewed .*; stopping; another leader may be running/,
    );
    expect(r.code).toBe(1);
    // Within the lease's expiry plus a margin for a loaded machine.
    expect(Date.now() - cut).toBeLessThan(leaseSeconds * 1000 + 20_000);
    const lines = r.stderr.split('\n');
    const lostAt = lines.findIndex((l) => /lost the leader lease/.test(l));
    expect(lines.slice(lostAt).filter((l) => /issued job/.test(l))).toEqual([]);
  }, 180_000);

  it('a renewal stalled longer than one attempt but shorter than the lease: the leader keeps its lease and finishes', async () => {
    // A lease of 24 s: renewed every 4 s, each attempt abandoned after 2 s and tried again after
    // 0.4 s, valid 22 s after the last renewal. A stall of 6 s holds at least one renewal, which
    // hangs until it is abandoned.
    const run = napsLeased(24, { count: 2, napMs: 12_000 });
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    await s3.server.setFaults({ hangPutMatch: 'leader-lease', hangMs: 600_000 });
    await new Promise((r) => setTimeout(r, 6_000));
    await s3.server.setFaults({});
    const r = await endWithin(run, 120_000);
    expect(r.timedOut).toBe(false);
    expect(r.stderr).not.toMatch(/lost the leader lease/);
    expect(r.code).toBe(0);
    // Renewals were tried during the stall, abandoned, and tried again.
    expect(r.stderr).toMatch(/could not renew the leader lease on \S+: .*abandoned .*; trying again in 0\.4s/);
    expect(JSON.parse(r.stdout)).toBe(2);
  }, 240_000);

  it('a lease lost after the leader loop: no record, no --clean onSuccess, and a non-zero exit', async () => {
    const loc = locator();
    const input = path.join(t.dir, 'in.txt');
    await writeFile(input, 'kept\n');
    // The export writes into a FIFO, and so waits, after the loop, until this test reads it.
    const fifo = path.join(t.dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const run = startToil(['run', workflow('files.ts'), loc, '--leaseSeconds', '6', '--clean', 'onSuccess', '--', input, `file://${fifo}`]);
    const lost = whenLogged(run, /lost the leader lease/);
    await whenLogged(run, /jobs: 3 done, 0 running, 0 queued, 0 failed/);
    // The loop has ended and the export waits: now the lease cannot be renewed, and is lost.
    await s3.server.setFaults({ hangPutMatch: 'leader-lease', hangMs: 10_000 });
    await lost;
    await s3.server.setFaults({});
    expect(await readFile(fifo, 'utf8')).toBe('KEPT\n');
    const r = await endWithin(run, 60_000);
    expect(await (await openJobStore(loc)).exists()).toBe(true);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/toil: refusing to write workflow\.json: lost the leader lease on aws:\S+: it could not be renewed/);
    await s3.server.setFaults({});
    expect((await toil(['clean', loc])).code).toBe(0);
  }, 180_000);
});

describe('leaders in other PID namespaces', () => {
  it('a live leader whose pid means nothing here is not taken for dead', async () => {
    // A lease of 12 s, renewed every 2 s: the second leader sees it renewed within seconds.
    const first = leaderInPidNamespace(
      ['run', workflow('slow.ts'), t.store, '--leaseSeconds', '12', ...naps({ traceDir: t.dir, count: 2, napMs: 60_000 })],
      { pid1: false },
    );
    try {
      await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
      const lease = await leaseOf(t.store);
      // Its pid, seen from here, is nobody: a pid check would call it dead.
      expect(aliveHere(lease.pid)).toBe(false);
      const second = await endWithin(startToil(['run', workflow('slow.ts'), t.store, '--restart']), 30_000);
      expect(second.timedOut).toBe(false);
      expect(second.stderr).toMatch(/in use by another leader/);
      expect(second.code).toBe(2);
    } finally {
      await killNamespace(first);
    }
  }, 120_000);

  it("a dead leader that was its namespace's pid 1 is taken over at once, not after its lease expires", async () => {
    const first = leaderInPidNamespace(['run', workflow('slow.ts'), t.store, ...naps({ traceDir: t.dir, count: 2, napMs: 3000 })], {
      pid1: true,
    });
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    const lease = await leaseOf(t.store);
    expect(lease.pid).toBe(1);
    await killNamespace(first);
    // The lease has not expired yet (30 s by default), but its holder is provably dead.
    expect(lease.expiresAt).toBeGreaterThan(Date.now() + 5_000);
    const second = await endWithin(startToil(['run', workflow('slow.ts'), t.store, '--restart']), 60_000);
    expect(second.stderr).not.toMatch(/in use by another leader/);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toBe(2);
  }, 120_000);
});

/** The environment of a process whose wall clock is `offsetMs` off (its monotonic clocks are not). */
function clockOffBy(offsetMs: number): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: `--import=${path.join(ROOT, 'test/helpers/offsetClock.mjs')}`, TOIL_TEST_CLOCK_OFFSET_MS: String(offsetMs) };
}

describe.each([
  ['60 s behind', -60_000],
  ['60 s ahead of', 60_000],
])("a holder whose wall clock is %s its successor's", (_what, offsetMs) => {
  const leaseSeconds = 6;

  it('while it renews, the successor is refused and the holder finishes', async () => {
    const holder = startToil(
      ['run', workflow('slow.ts'), t.store, '--leaseSeconds', String(leaseSeconds), ...naps({ traceDir: t.dir, count: 2, napMs: 10_000 })],
      {
        env: clockOffBy(offsetMs),
      },
    );
    try {
      await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
      const successor = await endWithin(
        startToil(['run', workflow('slow.ts'), t.store, '--restart', '--leaseSeconds', String(leaseSeconds)]),
        60_000,
      );
      expect(successor.code).toBe(2);
      const r = await endWithin(holder, 60_000);
      expect(r.stderr).not.toMatch(/lost the leader lease/);
      expect(r.code).toBe(0);
      expect(successor.stderr).toMatch(/watching it for 6s \(its lease period, on this machine's clock\)/);
      expect(successor.stderr).toMatch(/in use by another leader \(pid \d+ on [^)]+\): it renewed its lease while this run watched it/);
      expect(JSON.parse(r.stdout)).toBe(2);
      expect((await traceLines(t.dir)).filter((l) => l.startsWith('overlap'))).toEqual([]);
    } finally {
      holder.child.kill('SIGKILL');
    }
  }, 180_000);

  it('frozen, it is taken over after one lease period of silence; resumed, it stops without changing the store', async () => {
    // A machine that stops (a paused VM, a partition): the leader and its workers, frozen.
    const holder = startToil(
      ['run', workflow('slow.ts'), t.store, '--leaseSeconds', String(leaseSeconds), ...naps({ traceDir: t.dir, count: 2, napMs: 8_000 })],
      {
        env: clockOffBy(offsetMs),
        detached: true,
      },
    );
    const group = -holder.child.pid!;
    try {
      await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
      process.kill(group, 'SIGSTOP');
      const frozenAt = performance.now();
      const run = startToil(['run', workflow('slow.ts'), t.store, '--restart', '--clean', 'never', '--leaseSeconds', String(leaseSeconds)]);
      // It acts (restarts the workflow) only after a whole lease period of the holder's silence.
      const restartedAt = await whenLogged(run, /restarting workflow/, 120_000);
      expect(restartedAt - frozenAt).toBeGreaterThanOrEqual(leaseSeconds * 1000);
      const successor = await endWithin(run, 120_000);
      expect(successor.code).toBe(0);
      expect(JSON.parse(successor.stdout)).toBe(2);
      expect(successor.stderr).toMatch(/watching it for 6s/);
      expect(successor.stderr).toMatch(/was not renewed for 6s: taking it over/);

      process.kill(group, 'SIGCONT');
      const r = await endWithin(holder, 60_000);
      expect(r.stderr).toMatch(/lost the leader lease on \S+: (another leader took it over|it could not be renewed)/);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const after = await toil(['status', t.store, '--json']);
      expect(JSON.parse(after.stdout)).toMatchObject({ completed: true, counts: { total: 3, done: 3 } });
    } finally {
      try {
        process.kill(group, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, 240_000);
});

describe('the fence', () => {
  async function storeWithAJob(): Promise<{ store: Awaited<ReturnType<typeof openJobStore>>; job: JobRecord }> {
    const store = await openJobStore(t.store);
    await store.create();
    const job = sampleRecord('j-1');
    await store.createJob(job);
    return { store, job };
  }

  it('refuses to delete or destroy once another leader has taken the lease over', async () => {
    const { store, job } = await storeWithAJob();
    const lease = new Lease(store, { durationMs: 6000 });
    await lease.acquire();
    const fenced = new FencedJobStore(store, lease);
    // Another leader's write of the lease (as a successor that took it over makes).
    await store.writeShared(
      LEASE_FILE,
      JSON.stringify({ leaderId: 'other', host: 'elsewhere', pid: 1, durationMs: 6000, acquiredAt: 0, expiresAt: 0 }),
    );
    await waitFor(() => lease.lostError !== undefined, 20_000, 'the lease to be lost');
    expect(lease.lostError?.info.takenOver).toBe(true);
    await expect(fenced.deleteJob(job.id)).rejects.toMatchObject({
      code: 'LEASE_LOST',
      message: expect.stringMatching(/^refusing to delete job j-1: lost the leader lease/),
    });
    await expect(fenced.destroy()).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(await store.jobExists(job.id)).toBe(true);
    expect(await store.exists()).toBe(true);
    await lease.release();
  });

  it('refuses once the lease ran out unrenewed, and before it was ever taken', async () => {
    const { store, job } = await storeWithAJob();
    const never = new FencedJobStore(store, new Lease(store, { durationMs: 6000 }));
    await expect(never.deleteJob(job.id)).rejects.toMatchObject({
      code: 'LEASE_LOST',
      message: expect.stringMatching(/does not hold the leader lease/),
    });
    const lease = new Lease(store, { durationMs: 3000 });
    await lease.acquire();
    lease.stopRenewing();
    const fenced = new FencedJobStore(store, lease);
    await fenced.updateJob(job, (await store.loadJob(job.id)).version); // held: allowed
    await waitFor(() => lease.lostError !== undefined, 20_000, 'the lease to run out');
    await expect(fenced.deleteFile('x/y')).rejects.toMatchObject({
      code: 'LEASE_LOST',
      message: expect.stringMatching(/it could not be renewed/),
    });
    expect(await store.jobExists(job.id)).toBe(true);
    await lease.release();
  });
});
