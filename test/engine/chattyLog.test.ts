/** A chatty job's log: the worker keeps the start and the end of what it printed, within a bound. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { POD_LOG_LIMIT_BYTES } from '../../src/batch/podLogs.js';
import { openJobStore } from '../../src/jobstore/open.js';

const t = useTempStore();

describe('the log of a job that printed more than the worker keeps', () => {
  it('keeps its start and its end, with the final error, within about 1 MiB', async () => {
    const logs = path.join(t.dir, 'logs');
    // 1500 lines of 1.5 kB (2.3 MB), then the job throws its final error
    const r = await toil([
      'run',
      workflow('chatty.ts'),
      t.store,
      '--retryCount',
      '0',
      '--writeLogs',
      logs,
      '--',
      t.dir,
      '1500',
      '1500',
      'throw',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /job 'chatty' \(chatty-[a-z0-9]+\): the job threw Error: FATAL \(attempt 1\): reference chr1\.fa is truncated/,
    );
    const files = (await readdir(logs)).filter((f) => f.startsWith('chatty_'));
    expect(files).toHaveLength(1);
    const log = await readFile(path.join(logs, files[0]!), 'utf8');
    expect(log).toMatch(/^attempt 1 progress 1 \./);
    expect(log).toMatch(/\n\[\d+ characters of output left out\]\n/);
    expect(log).toMatch(/^attempt 1 progress 1500 \.+$/m);
    expect(log).toMatch(/failed: the job threw Error: FATAL \(attempt 1\): reference chr1\.fa is truncated/);
    expect(log.length).toBeLessThanOrEqual(1024 * 1024 + 100);
    const status = await toil(['status', t.store]);
    expect(status.stdout).toMatch(/FATAL \(attempt 1\)/);
  }, 120_000);

  it('a job that ends its process at once, its output still queued, is told with its final error', async () => {
    const r = await toil(['run', workflow('chatty.ts'), t.store, '--retryCount', '0', '--', t.dir, '2500', '1500', 'exit-at-once']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/job 'chatty' \(chatty-[a-z0-9]+\): the job called process\.exit\(3\)\n/);
    expect(r.stderr).toMatch(/\| FATAL \(attempt 1\): reference chr1\.fa is truncated/);
    // the worker could not save its log: the log kept is the end of what its process printed, within a pod log tail's bound
    const jobId = /job 'chatty' \((chatty-[a-z0-9]+)\)/.exec(r.stderr)?.[1];
    const stored = (await (await openJobStore(t.store)).readJobLog(jobId!)) ?? '';
    expect(stored).toMatch(/^FATAL \(attempt 1\): reference chr1\.fa is truncated$/m);
    expect(stored).toMatch(/^attempt 1 progress 2500 \.+$/m);
    expect(Buffer.byteLength(stored)).toBeLessThanOrEqual(POD_LOG_LIMIT_BYTES);
  }, 120_000);
});
