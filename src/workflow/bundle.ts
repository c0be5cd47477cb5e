/**
 * Bundling a workflow module for workers. esbuild compiles the module (TypeScript or
 * JavaScript, with whatever it imports) into one ES module. `toil-ts` itself is not bundled: a
 * small shim takes the API from the process that loads the bundle, so the bundle's jobs
 * register with the very engine that runs them, and the bundle can be loaded from anywhere.
 */
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { UsageError } from '../errors.js';
import { API_SYMBOL } from '../worker/loadBundle.js';

export interface Bundle {
  code: string;
  /** sha256 of the code, hex. */
  hash: string;
}

async function apiNames(): Promise<string[]> {
  const api = await import('../job/api.js');
  return Object.keys(api).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k));
}

function shimPlugin(names: string[]): Plugin {
  return {
    name: 'toil-ts-shim',
    setup(b) {
      b.onResolve({ filter: /^toil-ts$/ }, () => ({ path: 'toil-ts', namespace: 'toil-ts-shim' }));
      b.onLoad({ filter: /.*/, namespace: 'toil-ts-shim' }, () => ({
        contents:
          `const api = globalThis[Symbol.for(${JSON.stringify(API_SYMBOL)})];\n` +
          `if (!api) throw new Error('this workflow bundle must be loaded by toil-ts');\n` +
          names.map((n) => `export const ${n} = api.${n};`).join('\n') +
          '\n',
        loader: 'js',
      }));
    },
  };
}

/** Whether esbuild can load a file of this name as a module (.ts, .js, .mts, .tsx…). */
export function isModuleFile(name: string): boolean {
  return /\.(m|c)?[jt]sx?$/.test(name);
}

/** Where the bundle's source paths are relative to: the directory of `root`, or of the URL named. */
function sourceRoot(opts: { name?: string; root?: string }): string {
  if (opts.name !== undefined && /^[a-z][a-z0-9+.-]+:\/\//i.test(opts.name)) return new URL('.', opts.name).href;
  return `${pathToFileURL(path.resolve(opts.root ?? '.')).href}/`;
}

/**
 * Bundles the workflow module at `file`. Throws a UsageError naming it — as `name` when given
 * (the URL a module was fetched from) — on failure. Source paths in the bundle's source map are
 * relative to `root` (default: the current directory), so that a module fetched into a new
 * temporary directory each time bundles to the same code.
 */
export async function bundleWorkflow(file: string, opts: { name?: string; root?: string } = {}): Promise<Bundle> {
  const abs = path.resolve(file);
  const name = opts.name ?? file;
  try {
    await access(abs);
  } catch {
    throw new UsageError(`workflow file not found: ${name}`);
  }
  if (!isModuleFile(abs)) throw new UsageError(`workflow file must be .ts or .js: ${name}`);
  try {
    const result = await build({
      entryPoints: [abs],
      ...(opts.root ? { absWorkingDir: path.resolve(opts.root) } : {}),
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      logLevel: 'silent',
      // Stack traces in workers name the user's files: source paths are relative to `root`,
      // which the source root turns back into the file's place (or the URL it came from).
      sourcemap: 'inline',
      sourcesContent: false,
      sourceRoot: sourceRoot(opts),
      plugins: [shimPlugin(await apiNames())],
      banner: {
        js: "import { createRequire as __toilCreateRequire } from 'node:module'; const require = __toilCreateRequire(import.meta.url);",
      },
    });
    const out = result.outputFiles[0];
    if (!out) throw new UsageError(`bundling ${name} produced nothing`);
    const code = out.text;
    return { code, hash: createHash('sha256').update(code).digest('hex') };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const errors = (e as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors;
    const first = errors?.[0];
    if (first) {
      const at = first.location;
      const where = at ? `${path.resolve(opts.root ?? '.', at.file) === abs ? name : at.file}:${at.line}:${at.column}: ` : '';
      throw new UsageError(`cannot compile workflow ${name}: ${where}${first.text}`);
    }
    throw new UsageError(`cannot compile workflow ${name}: ${(e as Error).message}`);
  }
}
