/**
 * A leader with many running worker Jobs that cost the test machine next to nothing: the
 * workflow is slow.ts (a root that adds `count` naps); the first worker pod runs the real worker
 * (the root, which adds the naps), every later pod sleeps. For tests and benchmarks of what the
 * leader does with its running Jobs (shutdown, lease loss, `toil clean`), not of the naps.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NodeSpec } from '@toil-ts/testbed/cluster';
import { BIN, startToil, waitFor, workflow, type RunResult } from '../helpers/run.js';
import { naps } from '../workflows/args.js';
import { ANNOTATION_JOB_NAME } from '../../src/batch/kubernetesSpec.js';
import type { K8sEnv } from './setup.js';

/** Nodes for `count` sleeping pods and the root's: 100 pods a node (room for their default requests), one node spare. */
export function nodesFor(count: number): NodeSpec[] {
  return Array.from({ length: Math.ceil(count / 100) + 1 }, (_, i) => ({
    name: `node-${i + 1}`,
    cpu: '64',
    memory: '256Gi',
    ephemeralStorage: '1Ti',
  }));
}

type Pod = { metadata?: { annotations?: Record<string, string>; deletionTimestamp?: string }; status?: { phase?: string } };

/** Running nap pods (not being deleted). */
export function runningNaps(k: K8sEnv): number {
  return (k.cluster.list('pods') as Pod[]).filter(
    (p) => p.status?.phase === 'Running' && !p.metadata?.deletionTimestamp && p.metadata?.annotations?.[ANNOTATION_JOB_NAME] === 'nap',
  ).length;
}

export interface BusyLeader {
  child: ReturnType<typeof startToil>['child'];
  done: Promise<RunResult>;
  locator: string;
}

/**
 * Starts `toil run` of `count` naps on the kubernetes batch system in `dir` (a directory the
 * pods see) and waits until all of them run. `extra` are more options for `toil run`.
 */
export async function startBusyLeader(
  k: K8sEnv,
  opts: { dir: string; count: number; extra?: string[]; env?: NodeJS.ProcessEnv; waitMs?: number },
): Promise<BusyLeader> {
  await mkdir(opts.dir, { recursive: true });
  // the pods run as the image's non-root user: the marker goes here
  await chmod(opts.dir, 0o777);
  const script = path.join(opts.dir, 'worker.sh');
  const marker = path.join(opts.dir, 'root-started');
  await writeFile(
    script,
    `#!/bin/sh\nif mkdir '${marker}' 2>/dev/null; then exec '${process.execPath}' '${BIN}' worker "$@"; fi\nexec sleep 3600\n`,
  );
  await chmod(script, 0o755);
  const locator = k.locator();
  const run = startToil(
    [
      'run',
      workflow('slow.ts'),
      locator,
      '--batchSystem',
      'kubernetes',
      '--defaultCores',
      '0.1',
      '--defaultMemory',
      '512Mi',
      ...(opts.extra ?? []),
      ...naps({ traceDir: opts.dir, count: opts.count, napMs: 3_600_000 }),
    ],
    { env: { ...k.env, TOIL_KUBERNETES_WORKER_COMMAND: script, ...opts.env } },
  );
  let exited = false;
  void run.done.then(() => (exited = true));
  await waitFor(() => exited || runningNaps(k) >= opts.count, opts.waitMs ?? 240_000, `${opts.count} naps to run`);
  if (exited) throw new Error(`the leader exited early:\n${(await run.done).stderr}`);
  return { child: run.child, done: run.done, locator };
}
