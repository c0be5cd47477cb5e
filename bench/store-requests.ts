/**
 * Benchmark: requests per finished job for each kind of AWS job store: S3 only with conditional
 * writes, S3 only with the claim protocol, and metadata in SimpleDB (`--awsMetadata simpledb`:
 * SimpleDB requests + S3 requests). The fan-out workflow
 * (examples/fanout.ts: one job, N children, one follow-on) runs through the real CLI with the
 * single_machine batch system on the test S3 server and the SimpleDB test server; every request
 * the servers see is counted (leader and workers), from `toil run` to the store's removal.
 *
 *   npm run build && npx tsx bench/store-requests.ts [--children 100]
 */
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestS3 } from '@toil-ts/testbed/s3';
import { startSimpleDbServer } from '@toil-ts/testbed/simpledb';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'toil.js'), ...args], {
      cwd: repo,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

function top(byOp: Record<string, number>): string {
  return Object.entries(byOp)
    .filter(([k]) => k !== 'total')
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
}

interface Case {
  label: string;
  conditionalWrites: boolean;
  metadata: 's3' | 'simpledb';
}

async function measure(c: Case, children: number): Promise<void> {
  const [s3, sdb] = await Promise.all([startTestS3({ conditionalWrites: c.conditionalWrites }), startSimpleDbServer()]);
  try {
    const env = {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_SIMPLEDB: sdb.endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    const t = performance.now();
    const locator = `aws:us-east-1:sdbbench-${process.pid}-${c.metadata}`;
    const r = await run(['run', 'examples/fanout.ts', locator, '--awsMetadata', c.metadata, '--', String(children)], env);
    const secs = (performance.now() - t) / 1000;
    if (r.code !== 0) throw new Error(`toil run failed (${r.code}):\n${r.stderr}`);
    const jobs = Number(/(\d+) job\(s\) run/.exec(r.stderr)?.[1] ?? NaN);
    const s3c = await s3.requestCount();
    const sdbc = sdb.requestCounts();
    const sdbTotal = sdbc['total'] ?? 0;
    const per = (n: number) => (n / jobs).toFixed(1);
    console.log(
      `${c.label}: ${per(s3c.total + sdbTotal)} requests per job = ${per(sdbTotal)} SimpleDB + ${per(s3c.total)} S3 (${jobs} jobs, ${secs.toFixed(1)} s)`,
    );
    console.log(`    S3: ${top(s3c.byOp)}`);
    if (sdbTotal > 0) console.log(`    SimpleDB: ${top(sdbc)}`);
  } finally {
    await Promise.all([s3.stop(), sdb.stop()]);
  }
}

async function main(): Promise<void> {
  try {
    await access(path.join(repo, 'dist', 'cli', 'main.js'));
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const children = Number(arg('--children', '100'));
  console.log(`fan-out workflow with ${children} children (${children + 2} jobs), single_machine batch system, aws: job store`);
  const cases: Case[] = [
    { label: 'metadata in SimpleDB          ', conditionalWrites: true, metadata: 'simpledb' },
    { label: 'S3 only, conditional writes   ', conditionalWrites: true, metadata: 's3' },
    { label: 'S3 only, claim protocol       ', conditionalWrites: false, metadata: 's3' },
  ];
  for (const c of cases) await measure(c, children);
}

await main();
