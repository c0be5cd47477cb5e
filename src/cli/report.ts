/**
 * `toil report <jobStore|stats file> -o report.html`: one self-contained HTML file that opens
 * offline in any browser: the data (reportData.ts) embedded as JSON, and the page's script
 * (reportPage/page.ts) bundled with Chart.js by esbuild when the report is made. Chart.js:
 * about 200 KB minified with the parts used, no network, and the plot types the report needs
 * (floating bars for the timeline and ranges, stacked bars, mixed bar and point charts) on a
 * canvas, which stays quick with ten thousand bars.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { ToilError } from '../errors.js';
import { reportData } from './reportData.js';
import { checkWritable, writeWhole } from '../outputFile.js';
import { loadStats } from './stats.js';

/** The page script, beside this module (compiled, or its TypeScript source under tests). */
function pageEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), 'reportPage', `page${path.extname(here)}`);
}

/** The page script with Chart.js, as one minified script. */
export async function bundlePage(): Promise<string> {
  const out = await build({
    entryPoints: [pageEntry()],
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    write: false,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  const file = out.outputFiles[0];
  if (!file) throw new ToilError('INTERNAL', 'bundling the report page produced nothing');
  return file.text;
}

/** JSON that can sit inside a script element. */
function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}
header{background:#263238;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}header p{margin:4px 0 0;opacity:.75;font-size:12px}
main{max-width:1200px;margin:0 auto;padding:8px 24px 48px}section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;margin:16px 0;padding:12px 16px}
h2{font-size:16px;margin:4px 0 8px}h3{font-size:14px;margin:12px 0 4px}.note{color:#616161;font-size:12px;margin:0 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{border:1px solid #e0e0e0;border-radius:6px;padding:8px 14px;min-width:120px}
.card .value{font-size:20px;font-weight:600}.card .label{color:#616161;font-size:12px}.chart{position:relative;width:100%}
.failure{border-left:3px solid #c62828;padding:2px 10px;margin:8px 0}.failure summary{cursor:pointer;font-weight:600}pre{background:#263238;color:#eceff1;padding:8px;overflow:auto;font-size:12px;max-height:240px}
`;

export function reportHtml(data: ReturnType<typeof reportData>, script: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">`,
    '<title>toil-ts report</title>',
    `<style>${STYLE}</style></head>`,
    '<body><header><h1 id="title">toil-ts report</h1><p id="generated"></p></header><main id="content"></main>',
    `<script type="application/json" id="toil-data">${embedJson(data)}</script>`,
    `<script>${script.replace(/<\/script/gi, '<\\/script')}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** `toil report`: writes the report of `target` to `output`, whole or not at all. */
export async function reportCommand(target: string, o: { output: string }): Promise<string> {
  await checkWritable(o.output, `--output ${o.output}`);
  const stats = await loadStats(target);
  const title = `toil-ts report: ${stats.workflowFile ? path.basename(stats.workflowFile) : stats.workflowId}`;
  const html = reportHtml(reportData(stats, { title }), await bundlePage());
  await writeWhole(o.output, html);
  return `toil: report of ${stats.attempts.length} attempt(s) written to ${o.output} (${(html.length / 1024).toFixed(0)} KiB)`;
}
