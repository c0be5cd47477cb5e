/**
 * Makes docs/report.png, the README's picture of `toil report`: runs examples/wordcount.ts with
 * --stats on this machine, writes its report, and photographs it in Debian's headless Chromium
 * (test/helpers/chromium.ts: /usr/bin/chromium through puppeteer-core, nothing downloaded).
 *
 *   npm run report:screenshot
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openReport } from '../test/helpers/chromium.js';
import { BIN, ROOT } from '../test/helpers/run.js';

function toil(args: string[], cwd: string): void {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`toil ${args[0]} exited with ${r.status}`);
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-report-shot-'));
try {
  toil(
    ['run', path.join(ROOT, 'examples', 'wordcount.ts'), 'store', '--stats', '--retryCount', '2', '--retryBackoff', '0', '--maxCores', '2'],
    dir,
  );
  toil(['report', 'store.stats.json', '-o', 'report.html'], dir);
  const out = path.join(ROOT, 'docs', 'report.png');
  const page = await openReport(path.join(dir, 'report.html'), { screenshot: out, timeoutMs: 60_000, width: 1100, fullPage: true });
  if (page.errors.length > 0) throw new Error(`the report logged errors: ${page.errors.join('; ')}`);
  process.stderr.write(`wrote ${out}\n`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
