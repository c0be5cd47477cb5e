/**
 * Benchmark: S3 requests per finished job, for the fan-out workflow (examples/fanout.ts:
 * one job, N children, one follow-on) run by the real CLI on an `aws:` job store on the test S3
 * server, with conditional writes and with the claim protocol. Counts every request the server
 * sees (leader and workers), from `toil run` to the store's removal at the end.
 *
 *   npm run build && npx tsx bench/s3-requests.ts [--children 100]
 */
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestS3, type TestS3Counts } from '@toil-ts/testbed/s3';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'toil.js'), ...args], {
      cwd: repo,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function main(): Promise<void> {
  try {
    await access(path.join(repo, 'dist', 'cli', 'main.js'));
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const children = Number(arg('--children', '100'));
  console.log(
    `fan-out workflow with ${children} children (${children + 2} jobs), single_machine batch system, aws: job store on the test S3 server`,
  );
  for (const conditionalWrites of [true, false]) {
    const s3 = await startTestS3({ conditionalWrites });
    try {
      const env = {
        AWS_ENDPOINT_URL_S3: s3.endpoint,
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
        AWS_REGION: 'us-east-1',
        AWS_EC2_METADATA_DISABLED: 'true',
      };
      const t = performance.now();
      const r = await run(['run', 'examples/fanout.ts', `aws:us-east-1:reqbench-${process.pid}`, '--', String(children)], env);
      const secs = (performance.now() - t) / 1000;
      if (r.code !== 0) throw new Error(`toil run failed (${r.code}):\n${r.stderr}`);
      const jobs = Number(/(\d+) job\(s\) run/.exec(r.stderr)?.[1] ?? NaN);
      const c: TestS3Counts = await s3.requestCount();
      const ops = Object.entries(c.byOp)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');
      console.log(
        `${conditionalWrites ? 'conditional writes' : 'claim protocol   '}: ${c.total} requests for ${jobs} jobs = ${(c.total / jobs).toFixed(1)} per job (${secs.toFixed(1)} s)\n    ${ops}`,
      );
    } finally {
      await s3.stop();
    }
  }
}

await main();
