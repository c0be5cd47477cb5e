/**
 * A failed job's error, as `toil run` prints it when the job ran in a worker pod started as on a
 * real cluster (`toil worker` through bin/toil.js and the command-line parser): told once, in the
 * summary, the workflow's own stack frames under the message, and no frame of toil-ts, of
 * node_modules or of bin/toil.js.
 */
import { describe, expect, it } from '@jest/globals';
import { toil, workflow } from '../helpers/run.js';
import { useK8sEnv } from './useK8sEnv.js';

const k = useK8sEnv();

/** How many times `text` occurs in `s`. */
const occurrences = (s: string, text: string): number => s.split(text).length - 1;

describe("a failed job's error", () => {
  it('is told once, with the workflow frames first and none of node_modules or bin/toil.js', async () => {
    const r = await toil(['run', workflow('user-error.ts'), k.locator(), '--batchSystem', 'kubernetes', '--retryCount', '0'], {
      env: k.env,
    });
    expect(r.code).toBe(1);
    expect(occurrences(r.stderr, 'alignment of sample-42 failed: truncated input')).toBe(1);
    // the summary: the message, the workflow's frames under it (innermost first), then the job's output
    expect(r.stderr).toMatch(
      new RegExp(
        [
          String.raw`  job 'align' \(align-[a-z0-9]+\): the job threw Error: alignment of sample-42 failed: truncated input`,
          String.raw`    at readSample \(\S*/test/workflows/user-error\.ts:\d+:\d+\)`,
          String.raw`    at async FunctionJob\.fn \(\S*/test/workflows/user-error\.ts:\d+:\d+\)`,
          String.raw`    \| samtools: sample-42\.bam: input file is truncated`,
        ].join('\n'),
      ),
    );
    expect(r.stderr).not.toMatch(/node_modules/);
    expect(r.stderr).not.toMatch(/bin\/toil\.js/);
    expect(r.stderr).not.toMatch(/ at .*\/(src|dist)\/(worker|job|cli)\//);
    // the leader's log says when the job failed, not why again
    expect(r.stderr).toMatch(/ERROR +job 'align' \(align-[a-z0-9]+\) failed for good: the summary at the end says why/);
  }, 120_000);
});
