#!/usr/bin/env node
// Refuses to start on a Node that package.json's "engines" does not allow, before loading
// anything that needs a newer one: one line naming the Node needed and the one running, exit 2.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { nodeVersionProblem } from '../dist/nodeVersion.js';
import { CGROUP_FILES, HEAP_SIZED_ENV, heapMiBFor, heapSizeGiven, memoryLimit } from '../dist/heapSize.js';
import { mapWorkflowFrames } from '../dist/sourceMaps.js';

/** The "engines.node" range of our package.json (none if it cannot be read: nothing is refused). */
function enginesRange() {
  try {
    const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))?.engines?.node;
    return typeof range === 'string' ? range : undefined;
  } catch {
    return undefined;
  }
}

const problem = nodeVersionProblem(enginesRange(), process.version, process.execPath);
if (problem) {
  process.stderr.write(`toil: ${problem}\n`);
  process.exit(2);
}

/** A file's text, or undefined when it cannot be read. */
function readIfAny(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * The leader (`toil run`) in a container with a memory limit runs as a child of this process
 * with --max-old-space-size sized from the limit (heapSize.ts): V8 fixes its heap limit when it
 * starts, so the flag must be there from the start, and it is given to the child's Node alone,
 * not through NODE_OPTIONS, which every worker process and child would inherit. This process
 * passes SIGTERM and SIGHUP on (SIGINT from a terminal reaches both), waits, and ends as the
 * child did, saying so clearly when it ran out of heap.
 */
function runSized() {
  if (process.argv[2] !== 'run' || process.env[HEAP_SIZED_ENV] || heapSizeGiven(process.execArgv, process.env.NODE_OPTIONS)) return false;
  const limit = memoryLimit(process.env, CGROUP_FILES.map(readIfAny));
  if (!limit) return false;
  const heapMiB = heapMiBFor(limit.bytes);
  const limitMiB = Math.round(limit.bytes / 2 ** 20);
  const child = spawn(process.execPath, [`--max-old-space-size=${heapMiB}`, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [HEAP_SIZED_ENV]: `${heapMiB} MiB, from a memory limit of ${limitMiB} MiB (${limit.source})` },
  });
  for (const sig of ['SIGTERM', 'SIGHUP', 'SIGINT'])
    process.on(sig, () => (sig !== 'SIGINT' || !process.stdin.isTTY ? child.kill(sig) : undefined));
  child.on('exit', (code, signal) => {
    const more = `give the leader more memory (the Job's resources.limits.memory) and resume with 'toil run --restart'`;
    if (signal === 'SIGABRT' || code === 134)
      process.stderr.write(
        `toil: the leader ran out of memory: its heap was sized to ${heapMiB} MiB from the container's memory limit of ${limitMiB} MiB; ${more}\n`,
      );
    else if (signal === 'SIGKILL')
      process.stderr.write(
        `toil: the leader was killed (SIGKILL), in a container most often for going over its memory limit of ${limitMiB} MiB; ${more}\n`,
      );
    process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
  });
  return true;
}

if (runSized()) await new Promise(() => {});

// Stack traces of workflow code name the workflow's own files (bundles carry source maps).
mapWorkflowFrames();

const { main } = await import('../dist/cli/main.js');
await main(process.argv);
