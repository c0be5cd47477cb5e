/** Running the real `toil` CLI as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = path.join(ROOT, 'bin', 'toil.js');
export const WORKFLOWS = path.join(ROOT, 'test', 'workflows');
/** A temporary area that test cluster pods (local processes) can see too. */
export const SHARED_TMP = path.join(ROOT, '.tmp', 'shared');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts the `toil` CLI. With `detached`, it leads a process group of its own (its workers
 * included), which `process.kill(-child.pid, signal)` reaches as a whole.
 */
export function startToil(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function toil(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<RunResult> {
  return startToil(args, opts).done;
}

/**
 * A new temporary directory. `base` defaults to the system's; tests whose worker pods must see
 * the directory use {@link SHARED_TMP} (pods get private /tmp, /var/tmp and /root, as containers do).
 */
/**
 * {@link SHARED_TMP}, made if need be, writable by anyone as /tmp is (sticky): worker pods run as
 * the image's non-root user (1000) and leave their traces there.
 */
export async function sharedTmp(): Promise<string> {
  await mkdir(SHARED_TMP, { recursive: true });
  await chmod(SHARED_TMP, 0o1777);
  return SHARED_TMP;
}

export async function tempDir(prefix = 'toil-test-', base = os.tmpdir()): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  await mkdir(base, { recursive: true });
  const dir = await mkdtemp(path.join(base, prefix));
  // worker pods run as the image's non-root user (1000): a directory they share with the test is theirs to write too
  if (base === SHARED_TMP) await chmod(dir, 0o777);
  // retried a few times: a process the test stopped (a pod, a killed leader's worker) may still be ending
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }) };
}

export function workflow(name: string): string {
  return path.join(WORKFLOWS, name);
}

/** Lines of the trace file a test workflow writes. */
export async function traceLines(dir: string): Promise<string[]> {
  try {
    return (await readFile(path.join(dir, 'trace.log'), 'utf8')).split('\n').filter((l) => l !== '');
  } catch {
    return [];
  }
}

/** Wait until `check` is true (polling), or throw after `ms`. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 20000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function pathExists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
