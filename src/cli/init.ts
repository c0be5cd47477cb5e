/**
 * `toil init [dir]`: starts a project of one's own. Writes a first workflow, a tsconfig.json
 * with the settings `toil run` checks workflows with, and adds to package.json (made if
 * missing) a dependency on toil-ts and the scripts `typecheck` and `start`. Existing files are
 * never overwritten: package.json gains only what it lacks.
 */
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import { WORKFLOW_COMPILER_OPTIONS } from '../workflow/typecheck.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const FIRST_WORKFLOW = `/**
 * A first toil-ts workflow. \`npm run typecheck\` checks it, \`npm start\` runs it locally
 * (\`npm start -- Ada Grace\` passes arguments: they arrive as wf.args).
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

/** A job: a registered function of the job's context and JSON arguments. */
export const greet = defineJob('greet', async (ctx: JobContext, name: string) => {
  ctx.log(\`greeting \${name}\`);
  return \`Hello, \${name}\`;
});

/** Its argument holds promises of other jobs' values: they are resolved before it runs. */
export const join = defineJob('join', async (_ctx: JobContext, greetings: string[]) => greetings.join(' / '));

/** One child per name, in parallel; a follow-on joins their values once they are all done. */
export const greetAll = defineJob('greet-all', async (ctx: JobContext, names: string[]) => {
  const greetings = names.map((name) => ctx.addChild(greet(name)).rv());
  return ctx.addFollowOn(join(greetings)).rv();
});

export default function workflow(wf: WorkflowContext) {
  return greetAll(wf.args.length > 0 ? [...wf.args] : ['world']).require({ memory: '512Mi' });
}
`;

const PackageJson = z.looseObject({
  name: z.string().optional(),
  type: z.string().optional(),
  scripts: z.record(z.string(), z.string()).optional(),
  dependencies: z.record(z.string(), z.string()).optional(),
  devDependencies: z.record(z.string(), z.string()).optional(),
});
type PackageJson = z.infer<typeof PackageJson>;

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/** How a new project depends on this toil-ts: the same installed version, or this checkout. */
async function toilTsSpec(): Promise<string> {
  const own = JSON.parse(await readFile(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return PACKAGE_ROOT.split(path.sep).includes('node_modules') ? `^${own.version}` : `file:${PACKAGE_ROOT}`;
}

async function readPackageJson(file: string): Promise<PackageJson | undefined> {
  if (!(await exists(file))) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = PackageJson.safeParse(raw);
  if (!parsed.success)
    throw new UsageError(`${file} is not a package.json toil init can add to: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** package.json with what a workflow project needs added, and what was added. */
async function withProjectFields(pkg: PackageJson | undefined, dir: string): Promise<{ pkg: PackageJson; added: string[] }> {
  const out: PackageJson = pkg
    ? { ...pkg }
    : {
        name:
          path
            .basename(dir)
            .toLowerCase()
            .replace(/[^a-z0-9-]+/g, '-') || 'workflows',
        private: true,
      };
  const added: string[] = [];
  out.type ??= 'module';
  const scripts = { ...out.scripts };
  for (const [name, cmd] of Object.entries({ typecheck: 'tsc -p .', start: 'toil-ts run workflow.ts ./jobstore --clean always --' })) {
    if (scripts[name] === undefined) {
      scripts[name] = cmd;
      added.push(`script ${name}`);
    }
  }
  out.scripts = scripts;
  if (out.dependencies?.['toil-ts'] === undefined && out.devDependencies?.['toil-ts'] === undefined) {
    out.dependencies = { ...out.dependencies, 'toil-ts': await toilTsSpec() };
    added.push('dependency toil-ts');
  }
  return { pkg: out, added };
}

/** Writes the project's files into `dir`; returns what to tell the user. */
export async function initProject(dir: string): Promise<string> {
  const root = path.resolve(dir);
  await mkdir(root, { recursive: true });
  const taken = [];
  for (const f of ['workflow.ts', 'tsconfig.json']) if (await exists(path.join(root, f))) taken.push(f);
  if (taken.length > 0) throw new UsageError(`${taken.join(' and ')} already in ${root}: toil init writes nothing over existing files`);
  const pkgFile = path.join(root, 'package.json');
  const before = await readPackageJson(pkgFile);
  const { pkg, added } = await withProjectFields(before, root);
  const tsconfig = { compilerOptions: WORKFLOW_COMPILER_OPTIONS, include: ['**/*.ts'], exclude: ['node_modules'] };
  await writeFile(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
  await writeFile(path.join(root, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  await writeFile(path.join(root, 'workflow.ts'), FIRST_WORKFLOW);
  if (!(await exists(path.join(root, '.gitignore')))) await writeFile(path.join(root, '.gitignore'), 'node_modules/\njobstore/\n');
  const needsInstall = !(await exists(path.join(root, 'node_modules', 'toil-ts')));
  return [
    `toil init: wrote workflow.ts and tsconfig.json; ${before ? `package.json gained ${added.join(', ') || 'nothing'}` : 'wrote package.json'} (in ${root})`,
    `next: ${needsInstall ? 'npm install, then ' : ''}npm run typecheck, and npm start`,
  ].join('\n');
}
