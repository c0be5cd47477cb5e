/**
 * `toil report` opened in headless Chromium: no console errors, no request but the file itself,
 * every section there, the run's text shown as text; for a 10,000-job workflow the file stays
 * under 3 MiB and is drawn within 20 s on this (busy, 2-core) machine. Screenshots are kept in
 * .tmp/report-test/.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openReport } from '../helpers/chromium.js';
import { ROOT, toil } from '../helpers/run.js';
import { syntheticStats } from '../helpers/syntheticStats.js';
import { useTempStore } from '../helpers/tempStore.js';

const t = useTempStore();
const ARTIFACTS = path.join(ROOT, '.tmp', 'report-test');
const SECTIONS = ['summary', 'advice', 'timeline', 'resources', 'phases', 'failures', 'cache'];

describe('toil report', () => {
  it('for a 10,000-job workflow: under 3 MiB, drawn offline in Chromium within 20 s, every section, no errors, no requests', async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    const statsFile = path.join(t.dir, 'big.stats.json');
    await writeFile(statsFile, JSON.stringify(syntheticStats(10_000)));
    const html = path.join(t.dir, 'report.html');
    const made = await toil(['report', statsFile, '-o', html]);
    expect(made.stderr).toMatch(/^toil: report of 10500 attempt\(s\) written to \S+report\.html \(\d+ KiB\)\n$/);
    expect(made.code).toBe(0);
    expect((await stat(html)).size).toBeLessThan(3 * 2 ** 20);

    const page = await openReport(html, { screenshot: path.join(ARTIFACTS, 'report-10000.png'), timeoutMs: 60_000 });
    expect(page.errors).toEqual([]);
    expect(page.requests).toEqual([`file://${html}`]);
    expect(page.sections).toEqual(SECTIONS);
    process.stderr.write(`report of 10,000 jobs: ${(await stat(html)).size} bytes, drawn in ${page.openMs} ms\n`);
    expect(page.openMs).toBeLessThan(20_000);
    expect(await page.text('summary')).toMatch(/10000\s*jobs/);
    expect(await page.text('advice')).toMatch(
      /split asked for 2\.0 GiB of memory and used at most 174 MiB in 1667 attempts: 256Mi would do/,
    );
    // the run's text is text: tags in messages and log lines are shown, not obeyed
    const failures = await page.text('failures');
    expect(failures).toContain('The first 100 of 500 failed attempts.');
    expect(failures).toContain('line 19 <script>document.body.remove()</script>');
    expect(failures).toContain('the job threw Error: <b>not bold</b> truncated input');
  }, 120_000);
});
