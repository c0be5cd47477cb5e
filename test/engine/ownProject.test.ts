/**
 * A project of one's own, from an empty directory, following the README's steps: install
 * toil-ts from a tarball of this checkout (`npm pack`), `npx toil-ts init`, `npm run
 * typecheck`, a type error that `toil-ts run` refuses with exit 2, `npm start`, a stack
 * trace that names the user's file and line (and no installed package's), and `npx toil-ts init
 * --kubernetes`, whose overlay renders. Runs on Node 22 (first on PATH).
 *
 * Offline: the only thing put in the directory beforehand is a package-lock.json made from this
 * checkout's, standing in for the registry (npm then takes every dependency from its cache, as
 * `npm ci` left it); the README's `npm install <tarball>` is then run as written.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT, tempDir } from '../helpers/run.js';

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

const NODE22_BIN = path.join(ROOT, 'node_modules', 'node', 'bin');

function sh(cmd: string, args: string[], cwd: string): Promise<Done> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_OPTIONS: '',
    PATH: `${NODE22_BIN}${path.delimiter}${process.env['PATH'] ?? ''}`,
    npm_config_update_notifier: 'false',
  };
  for (const k of Object.keys(env)) if (k.startsWith('npm_') && k !== 'npm_config_update_notifier') delete env[k];
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** The lockfile that lets `npm install <tarball>` work offline: this checkout's production packages, and the tarball. */
async function offlineLock(tarball: string, spec: string): Promise<string> {
  type Entry = Record<string, unknown> & { dev?: boolean; link?: boolean };
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, Entry> };
  const own = lock.packages['']!;
  const packages: Record<string, unknown> = { '': { dependencies: { 'toil-ts': spec } } };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev && !v.link) packages[k] = v;
  const integrity = `sha512-${createHash('sha512')
    .update(await readFile(tarball))
    .digest('base64')}`;
  const { version, license, dependencies, bin, engines } = own;
  packages['node_modules/toil-ts'] = { version, resolved: spec, integrity, license, dependencies, bin, engines };
  return JSON.stringify({ lockfileVersion: 3, requires: true, packages }, null, 2);
}

describe('a project of your own', () => {
  it('init, typecheck, a type error refused, a run, and traces that name your file', async () => {
    const t = await tempDir('toil-own-');
    try {
      const packs = path.join(t.dir, 'packs');
      await mkdir(packs);
      const pack = await sh('npm', ['pack', '--pack-destination', packs, '--silent'], ROOT);
      expect(pack.code).toBe(0);
      const tarball = path.join(packs, (await readdir(packs))[0]!);

      const project = path.join(t.dir, 'my-flows');
      await mkdir(project);
      await writeFile(path.join(project, 'package-lock.json'), await offlineLock(tarball, `file:../packs/${path.basename(tarball)}`));
      const install = await sh('npm', ['install', tarball, '--offline', '--no-audit', '--no-fund'], project);
      expect(install.stderr).not.toMatch(/ERR!|npm error/);
      expect(install.code).toBe(0);

      const init = await sh('npx', ['--offline', 'toil-ts', 'init'], project);
      expect(init.code).toBe(0);
      expect(init.stderr).toMatch(/wrote workflow\.ts and tsconfig\.json; package\.json gained script typecheck, script start/);
      const pkg = JSON.parse(await readFile(path.join(project, 'package.json'), 'utf8')) as {
        type: string;
        scripts: Record<string, string>;
        dependencies: Record<string, string>;
      };
      expect(pkg.type).toBe('module');
      expect(Object.keys(pkg.scripts)).toEqual(['typecheck', 'start']);
      expect(pkg.dependencies['toil-ts']).toMatch(/\.tgz$/);

      const check = await sh('npm', ['run', '--silent', 'typecheck'], project);
      expect(check.stdout + check.stderr).toBe('');
      expect(check.code).toBe(0);

      const good = await readFile(path.join(project, 'workflow.ts'), 'utf8');
      await writeFile(path.join(project, 'workflow.ts'), good.replace('ctx.log(`greeting ${name}`)', 'ctx.log(name.length)'));
      const typo = await sh('npx', ['--offline', 'toil-ts', 'run', 'workflow.ts', './jobstore'], project);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toMatch(
        /^toil: workflow workflow\.ts does not type-check \(1 error; .*\n {2}workflow\.ts:9:11 Argument of type 'number' is not assignable to parameter of type 'string'\. \(TS2345\)\n$/,
      );
      expect(await readdir(project)).not.toContain('jobstore');

      await writeFile(path.join(project, 'workflow.ts'), good);
      const run = await sh('npm', ['start', '--silent', '--', 'Ada', 'Grace'], project);
      expect(run.stderr).toMatch(/\[greet greet-[a-z0-9]+\] greeting Ada/);
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toBe('Hello, Ada / Hello, Grace');

      const failing = [
        "import { defineJob } from 'toil-ts';",
        '',
        "const parse = defineJob('parse', async (_ctx, text: string) => {",
        '  return JSON.parse(text) as unknown;',
        '});',
        '',
        "export default () => parse('{not json');",
        '',
      ];
      await writeFile(path.join(project, 'parse.ts'), failing.join('\n'));
      const trace = await sh(
        'npx',
        ['--offline', 'toil-ts', 'run', 'parse.ts', './jobstore', '--retryCount', '0', '--clean', 'always'],
        project,
      );
      expect(trace.code).toBe(1);
      expect(trace.stderr).toMatch(/job 'parse' \(parse-[a-z0-9]+\): the job threw SyntaxError: /);
      expect(trace.stderr).toContain(`${path.join(project, 'parse.ts')}:4:15`);
      expect(trace.stderr).not.toMatch(/node_modules/);

      // a run of one's own on Kubernetes: the installed package brings its manifests
      const k8s = await sh('npx', ['--offline', 'toil-ts', 'init', '--kubernetes', 'k8s'], project);
      expect(k8s.code).toBe(0);
      const rendered = await sh('kubectl', ['kustomize', 'k8s'], project);
      expect(rendered.stderr).toBe('');
      expect(rendered.stdout).toMatch(/name: toil-leader-example-run\n/);
    } finally {
      await t.cleanup();
    }
  }, 240_000);
});
