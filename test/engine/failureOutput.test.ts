/**
 * Errors in the workflow's own code, as `toil run` prints them on this machine: a failed job's
 * error once, in the summary, with the workflow's frames under it; an error thrown while building
 * the root job in one line with the workflow's frames under it. Never a frame of toil-ts, of
 * node_modules or of bin/toil.js. (test/kubernetes/failureOutput.test.ts: the same from worker pods.)
 */
import { describe, expect, it } from '@jest/globals';
import { toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';

const t = useTempStore();

const occurrences = (s: string, text: string): number => s.split(text).length - 1;

/** No frame but the workflow's: none in node_modules, bin/toil.js, or toil-ts's own code. */
function onlyWorkflowFrames(stderr: string): void {
  expect(stderr).not.toMatch(/node_modules/);
  expect(stderr).not.toMatch(/bin\/toil\.js/);
  expect(stderr).not.toMatch(/ at .*\/(src|dist)\/[a-z]+\//);
}

describe("errors in the workflow's code", () => {
  it("a failed job's message is told once, in the summary, its frames under it, then the job's output", async () => {
    const r = await toil(['run', workflow('user-error.ts'), t.store, '--retryCount', '0']);
    expect(r.code).toBe(1);
    expect(occurrences(r.stderr, 'alignment of sample-42 failed: truncated input')).toBe(1);
    expect(r.stderr).toMatch(
      /job 'align' \(align-[a-z0-9]+\): the job threw Error: alignment of sample-42 failed: truncated input\n {4}at readSample \(\S+user-error\.ts:\d+:\d+\)\n {4}at async FunctionJob\.fn \(\S+user-error\.ts:\d+:\d+\)\n {4}\| samtools: sample-42\.bam: input file is truncated\n/,
    );
    onlyWorkflowFrames(r.stderr);
  });

  it('with retries, each attempt is told once: the retry warning, then the summary', async () => {
    const r = await toil(['run', workflow('user-error.ts'), t.store, '--retryCount', '1', '--retryBackoff', '0']);
    expect(r.code).toBe(1);
    expect(occurrences(r.stderr, 'alignment of sample-42 failed: truncated input')).toBe(2);
    expect(r.stderr).toMatch(
      /WARNING +job 'align' .* failed: the job threw Error: alignment of sample-42 failed: truncated input; retrying/,
    );
    onlyWorkflowFrames(r.stderr);
  });

  it('an error thrown while building the root job: one line, the frames of the workflow under it', async () => {
    const r = await toil(['run', workflow('user-error.ts'), t.store, '--', 'build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^toil: no sample named: give one after --\n {4}at sampleName \(\S+user-error\.ts:\d+:\d+\)\n {4}at workflow \(\S+user-error\.ts:\d+:\d+\)\n$/,
    );
    onlyWorkflowFrames(r.stderr);
  });
});
