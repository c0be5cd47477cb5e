/**
 * Stress: a failing 16-chunk word count (one chunk always fails) run again and again on the
 * test cluster, with CPU hogs beside it, each run checked for the right verdict — the leader
 * exits 1, names the failed `count-chunk` job, and ends with 15 chunks and the split done. A run
 * that does not end within the bound counts as a hang (the leader waited for nothing). Prints
 * each run's time, then the slowest and the median.
 *
 *   npm run build && npx tsx bench/k8s-verdicts.ts [runs=50] [hogs=2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { startToil, workflow } from '../test/helpers/run.js';
import { startK8sEnv } from '../test/kubernetes/setup.js';

const runs = Number(process.argv[2] ?? '50');
const hogCount = Number(process.argv[3] ?? '2');
const BOUND_MS = 300_000;

function hog(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
}

const k = await startK8sEnv({ nodes: [{ name: 'node-1', cpu: '16', memory: '64Gi' }] });
const hogs = Array.from({ length: hogCount }, hog);
const times: number[] = [];
let wrong = 0;
try {
  for (let i = 1; i <= runs; i++) {
    const t0 = performance.now();
    const run = startToil(
      [
        'run',
        workflow('../../bench/workflows/wordcount.ts'),
        k.locator(),
        '--batchSystem',
        'kubernetes',
        '--retryCount',
        '1',
        '--retryBackoff',
        '0.5',
        '--clean',
        'always',
        '--',
        '16',
        '7',
      ],
      { env: k.env },
    );
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), BOUND_MS)));
    const r = await Promise.race([run.done, hung]);
    clearTimeout(timer);
    const seconds = (performance.now() - t0) / 1000;
    let verdict: string;
    if (r === 'hung') {
      run.child.kill('SIGTERM');
      await run.done;
      verdict = `HUNG after ${BOUND_MS / 1000}s`;
      wrong++;
    } else {
      const right =
        r.code === 1 &&
        /job 'count-chunk' \([^)]+\) failed/.test(r.stderr) &&
        /jobs: 16 done, 0 running, 0 queued(, 1 waiting)?, 1 failed \(of 18\)/.test(r.stderr);
      verdict = right ? 'right' : `WRONG (exit ${r.code}): ${r.stderr.split('\n').slice(-6).join(' | ')}`;
      if (!right) wrong++;
    }
    times.push(seconds);
    console.log(`run ${i}/${runs}: ${seconds.toFixed(1)}s ${verdict}; left: ${k.leftoverJobs()} Jobs`);
  }
} finally {
  for (const h of hogs) h.kill('SIGKILL');
  await k.stop();
}
const sorted = [...times].sort((a, b) => a - b);
console.log(
  `${runs} runs with ${hogCount} CPU hogs: ${runs - wrong} right, ${wrong} wrong or hung; slowest ${sorted.at(-1)?.toFixed(1)}s, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)}s`,
);
