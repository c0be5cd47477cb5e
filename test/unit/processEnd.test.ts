/** How a batch system reads how a worker process ended, and whether the job store has the attempt's log. */
import { describe, expect, it } from '@jest/globals';
import { WORKER_EXIT_JOB_FAILED, processEndLine, processEndReason, tailIsAttemptLog } from '../../src/batch/processEnd.js';

describe('the end of a worker process', () => {
  const exitLine = processEndLine("wrapper 'wrapper' (wrapper-abc)", { exitCode: WORKER_EXIT_JOB_FAILED });

  it('reads a job that ended its process from the last lines', () => {
    expect(processEndReason(['samtools: input file is truncated', exitLine])).toBe(
      `the job called process.exit(${WORKER_EXIT_JOB_FAILED})`,
    );
    expect(processEndReason(['Job failed: the job threw Error: no'])).toBeUndefined();
  });

  it("the tail is the attempt's log unless the worker saved the log itself", () => {
    expect(tailIsAttemptLog(WORKER_EXIT_JOB_FAILED, ['Job x failed: the job threw Error: no'])).toBe(false);
    expect(tailIsAttemptLog(WORKER_EXIT_JOB_FAILED, ['bye', exitLine])).toBe(true);
    expect(tailIsAttemptLog(3, ['bye'])).toBe(true);
    expect(tailIsAttemptLog(137, [])).toBe(true);
    expect(tailIsAttemptLog(null, [])).toBe(true);
  });
});
