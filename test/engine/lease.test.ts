/**
 * Lease fencing and liveness, through the real CLI: a leader that cannot renew its lease stops
 * issuing work and exits before a successor could take over; a leader in another PID namespace
 * (as in a container) is judged alive or dead by its lock, never by its pid.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { startTestS3, type TestS3 } from '@toil-ts/testbed/s3';
import { BIN, ROOT, startToil, traceLines, waitFor, workflow, type RunResult } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { naps } from '../workflows/args.js';
import { openJobStore } from '../../src/jobstore/open.js';
import { readLease } from '../../src/leader/lease.js';

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

async function leaseOf(store: string): Promise<{ pid: number; expiresAt: number }> {
  let lease: Awaited<ReturnType<typeof readLease>>;
  await waitFor(async () => (lease = await readLease(await openJobStore(store))) !== undefined, 30_000, 'the lease');
  return lease!.body;
}

describe('lease fencing', () => {
  let s3: TestS3;
  const env = (): NodeJS.ProcessEnv => ({
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  beforeAll(async () => {
    s3 = await startTestS3({ conditionalWrites: true });
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it('a leader that cannot renew its lease stops issuing work and exits before it expires', async () => {
    const leaseSeconds = 6;
    const run = startToil(
      [
        'run',
        workflow('slow.ts'),
        `aws:us-east-1:lease-${process.pid}`,
        '--maxJobs',
        '2',
        '--leaseSeconds',
        String(leaseSeconds),
        '--logDebug',
        ...naps({ traceDir: t.dir, count: 40, napMs: 1500 }),
      ],
      { env: env() },
    );
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    // The job store stops answering lease renewals; everything else still works, so only
    // fencing can stop the leader from going on.
    await s3.setFaults({ hangPutMatch: 'leader-lease', hangMs: 600_000 });
    const cut = Date.now();
    const r = await endWithin(run, 90_000);
    await s3.setFaults({});
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toMatch(
      /lost the leader lease on aws:us-east-1:lease-\d+: it could not be renewed .*; stopping; another leader may be running/,
    );
    expect(r.code).toBe(1);
    // Within the lease's expiry plus a margin for a loaded machine.
    expect(Date.now() - cut).toBeLessThan(leaseSeconds * 1000 + 20_000);
    const lines = r.stderr.split('\n');
    const lostAt = lines.findIndex((l) => /lost the leader lease/.test(l));
    expect(lines.slice(lostAt).filter((l) => /issued job/.test(l))).toEqual([]);
  }, 180_000);
});

describe('leaders in other PID namespaces', () => {
  it('a live leader whose pid means nothing here is not taken for dead', async () => {
    const first = leaderInPidNamespace(['run', workflow('slow.ts'), t.store, ...naps({ traceDir: t.dir, count: 2, napMs: 60_000 })], {
      pid1: false,
    });
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
      first.kill('SIGKILL');
    }
  }, 120_000);

  it("a dead leader that was its namespace's pid 1 is taken over at once, not after its lease expires", async () => {
    const first = leaderInPidNamespace(['run', workflow('slow.ts'), t.store, ...naps({ traceDir: t.dir, count: 2, napMs: 3000 })], {
      pid1: true,
    });
    await waitFor(async () => (await traceLines(t.dir)).length >= 2, 60_000, 'naps to start');
    const lease = await leaseOf(t.store);
    expect(lease.pid).toBe(1);
    const gone = new Promise((r) => first.once('exit', r));
    first.kill('SIGKILL');
    await gone;
    // The lease has not expired yet (30 s by default), but its holder is provably dead.
    expect(lease.expiresAt).toBeGreaterThan(Date.now() + 5_000);
    const second = await endWithin(startToil(['run', workflow('slow.ts'), t.store, '--restart']), 60_000);
    expect(second.stderr).not.toMatch(/in use by another leader/);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toBe(2);
  }, 120_000);
});
