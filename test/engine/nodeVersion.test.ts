/**
 * bin/toil.js on a Node that package.json's "engines" does not allow: one line naming the Node
 * needed and the one running, exit 2, nothing created. Run with the machine's own Node 20
 * (/usr/bin/node, where node:sqlite is missing), and with this Node against a range it fails.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BIN, ROOT, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';

const t = useTempStore();
const SYSTEM_NODE = '/usr/bin/node';

function run(node: string, bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(node, [bin, ...args], { cwd: t.dir, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The major version of a Node binary, or undefined if there is none at that path. */
function majorOf(node: string): number | undefined {
  if (!existsSync(node)) return undefined;
  const v = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  return Number(/^v(\d+)\./.exec(v)?.[1]);
}

const systemMajor = majorOf(SYSTEM_NODE);

describe('the Node check', () => {
  // This machine's system Node is 20 (the reason for the check); elsewhere there may be none.
  (systemMajor !== undefined && systemMajor < 22 ? it : it.skip)(
    `refuses to run under the system Node ${systemMajor ?? '(none)'} with one line and exit 2, creating nothing`,
    async () => {
      const store = path.join(t.dir, 'store');
      const r = await run(SYSTEM_NODE, BIN, ['run', path.join(ROOT, 'examples', 'helloworld.ts'), store]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^toil: toil-ts needs Node >=22 \(package\.json "engines"\); this is Node v20\.\d+\.\d+ \(\/usr\/bin\/node\)\n$/,
      );
      expect(existsSync(store)).toBe(false);
    },
  );

  it('reads the range from package.json: a copy that asks for Node 99 refuses this Node', async () => {
    // The package as installed (package.json, bin/, dist/), with a range no Node meets.
    const pkg = path.join(t.dir, 'pkg');
    await mkdir(path.join(pkg, 'bin'), { recursive: true });
    await cp(BIN, path.join(pkg, 'bin', 'toil.js'));
    await symlink(path.join(ROOT, 'dist'), path.join(pkg, 'dist'));
    await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'toil-ts', type: 'module', engines: { node: '>=99.1' } }));
    const r = await run(process.execPath, path.join(pkg, 'bin', 'toil.js'), ['run', workflow('args.ts'), path.join(t.dir, 'store')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `toil: toil-ts needs Node >=99.1 (package.json "engines"); this is Node ${process.version} (${process.execPath})\n`,
    );
    expect((await readdir(t.dir)).sort()).toEqual(['pkg']);
    // The same copy with our own range runs.
    await writeFile(path.join(pkg, 'package.json'), JSON.stringify({ name: 'toil-ts', type: 'module', engines: { node: '>=22' } }));
    const ok = await run(process.execPath, path.join(pkg, 'bin', 'toil.js'), ['--version']);
    expect(ok.code).toBe(0);
  });
});
