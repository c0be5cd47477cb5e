/**
 * The few buildah calls the image builds need, always on the vfs storage driver (no daemon, no
 * kernel overlay support needed to build) in buildah's default storage for root, which is also
 * where the test cluster's kubelet finds images.
 */
import { spawn } from 'node:child_process';

export const STORAGE_ARGS = ['--storage-driver', 'vfs'];

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; `echo` streams its output (for long builds) as well as collecting it. */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { echo?: (chunk: string) => void; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.echo?.(d.toString());
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.echo?.(d.toString());
    });
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'ENOENT' ? new Error(`${cmd} is not installed: apt-get install -y buildah debootstrap`) : e),
    );
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Runs a command and fails with its output when it exits non-zero. */
export async function mustRun(cmd: string, args: string[], opts: Parameters<typeof runCommand>[2] = {}): Promise<string> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.code}:\n${(r.stderr || r.stdout).trim().split('\n').slice(-20).join('\n')}`);
  return r.stdout.trim();
}

export function buildah(args: string[], opts: Parameters<typeof runCommand>[2] = {}): Promise<string> {
  return mustRun('buildah', [...STORAGE_ARGS, ...args], opts);
}

/** The image's ID, or undefined when no image of that name is in local storage. */
export async function imageId(name: string): Promise<string | undefined> {
  const r = await runCommand('buildah', [...STORAGE_ARGS, 'inspect', '--type', 'image', '--format', '{{.FromImageID}}', name]);
  return r.code === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** The size of an image as buildah reports it (the sum of its layers, e.g. "328 MB"). */
export async function imageSize(name: string): Promise<string> {
  return (await buildah(['images', '--format', '{{.Size}}', name])).split('\n')[0]!;
}
