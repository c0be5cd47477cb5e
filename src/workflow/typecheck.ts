/**
 * Type-checking a workflow module before it runs: esbuild only strips types, so without this a
 * `const n: number = 'x'` would run and fail later, or not at all. The TypeScript compiler
 * checks the module and what it imports with strict settings (the same `toil init` writes to
 * a project's tsconfig.json). `toil-ts` resolves to this package's own declarations, so a
 * workflow anywhere — in a project with toil-ts installed, or a lone file — is checked against
 * the API that will run it. A check that passed is remembered with the hashes of the
 * workflow's own files, so an unchanged workflow is not checked again.
 */
import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type ts from 'typescript';
import { TypeCheckError } from '../errors.js';

/** The compiler options of a workflow, as tsconfig.json spells them (also what `toil init` writes). */
export const WORKFLOW_COMPILER_OPTIONS = {
  target: 'ES2023',
  lib: ['ES2023'],
  module: 'preserve',
  moduleResolution: 'bundler',
  strict: true,
  noEmit: true,
  allowImportingTsExtensions: true,
  allowJs: true,
  resolveJsonModule: true,
  esModuleInterop: true,
  skipLibCheck: true,
  isolatedModules: true,
  types: ['node'],
} as const;

/** Diagnostics shown at most; the rest are counted. */
const MAX_SHOWN = 20;

const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

const require = createRequire(import.meta.url);

/** The compiler, loaded only when a check has to run (it is large: workers never load it). */
async function compiler(): Promise<typeof ts> {
  return (await import('typescript')).default;
}

function compilerOptions(ts: typeof import('typescript')): ts.CompilerOptions {
  const { options, errors } = ts.convertCompilerOptionsFromJson(WORKFLOW_COMPILER_OPTIONS, PACKAGE_ROOT);
  if (errors.length > 0) throw new Error(ts.flattenDiagnosticMessageText(errors[0]!.messageText, '\n'));
  const nodeTypes = path.dirname(require.resolve('@types/node/package.json'));
  return {
    ...options,
    // The API that runs the workflow, wherever the workflow lives.
    paths: { 'toil-ts': [path.join(PACKAGE_ROOT, 'dist', 'index.d.ts')] },
    typeRoots: [path.dirname(nodeTypes)],
  };
}

export interface TypeCheckInput {
  /** The workflow's entry file. */
  file: string;
  /** How messages name the entry file (its URL when fetched). */
  name: string;
}

/** What a check found: nothing, or the compiler's messages (at most MAX_SHOWN) and how many there were. */
export type CheckResult = { ok: true } | { ok: false; count: number; shown: string[] };

/**
 * Throws a TypeCheckError with the compiler's messages (file:line:col message) if the module
 * does not type-check. The compiler runs in a child process of its own: the leader, which may
 * live for days, never holds the compiler and the program in memory.
 */
export async function typecheckWorkflow(input: TypeCheckInput): Promise<void> {
  if (await stillValid(await stampFile(input.file))) return;
  const result = await checkInChild(input);
  if (result.ok) return;
  const n = result.count;
  throw new TypeCheckError(
    `workflow ${input.name} does not type-check (${n} error${n === 1 ? '' : 's'}; --no-typecheck runs it anyway):`,
    result.shown,
  );
}

function checkInChild(input: TypeCheckInput): Promise<CheckResult> {
  const child = fork(fileURLToPath(new URL('./typecheckMain.js', import.meta.url)), [JSON.stringify(input)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: [],
    serialization: 'json',
  });
  return new Promise((resolve, reject) => {
    let answer: CheckResult | undefined;
    child.on('message', (m) => (answer = m as CheckResult));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      answer ? resolve(answer) : reject(new Error(`the type checker ended without an answer (${signal ?? `exit code ${code}`})`)),
    );
  });
}

/** Runs the compiler here and now, and remembers a passed check. */
export async function checkNow(input: TypeCheckInput): Promise<CheckResult> {
  const ts = await compiler();
  const program = ts.createProgram({ rootNames: [path.resolve(input.file)], options: compilerOptions(ts) });
  const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diagnostics.length === 0) {
    await remember(await stampFile(input.file), program);
    return { ok: true };
  }
  const shown = diagnostics.slice(0, MAX_SHOWN).map((d) => formatDiagnostic(ts, d, input));
  if (diagnostics.length > MAX_SHOWN) shown.push(`… and ${diagnostics.length - MAX_SHOWN} more`);
  return { ok: false, count: diagnostics.length, shown };
}

/** `file:line:col message`, the file as the user knows it. */
function formatDiagnostic(ts: typeof import('typescript'), d: ts.Diagnostic, input: TypeCheckInput): string {
  const text = ts
    .flattenDiagnosticMessageText(d.messageText, '\n')
    .split('\n')
    .map((l) => l.trim())
    .join(' ');
  if (!d.file || d.start === undefined) return `error TS${d.code}: ${text}`;
  const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
  const file = path.resolve(d.file.fileName) === path.resolve(input.file) ? input.name : shortPath(d.file.fileName);
  return `${file}:${line + 1}:${character + 1} ${text} (TS${d.code})`;
}

function shortPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/**
 * Where a passed check is remembered: named by the entry file, the compiler, the options and
 * toil-ts's declarations; it lists the workflow's own files (not libraries) with their hashes.
 */
async function stampFile(entry: string): Promise<string> {
  const tsVersion = (require('typescript/package.json') as { version: string }).version;
  const h = createHash('sha256').update(path.resolve(entry)).update(tsVersion).update(JSON.stringify(WORKFLOW_COMPILER_OPTIONS));
  h.update(await readFile(path.join(PACKAGE_ROOT, 'dist', 'index.d.ts')).catch(() => ''));
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'u';
  return path.join(process.env['TOIL_BUNDLE_CACHE'] ?? os.tmpdir(), `toil-ts-typechecked-${uid}`, `${h.digest('hex')}.json`);
}

async function hashOf(file: string): Promise<string | undefined> {
  return readFile(file).then(
    (b) => createHash('sha256').update(b).digest('hex'),
    () => undefined,
  );
}

/** Whether the files of a remembered check are all unchanged. */
async function stillValid(stamp: string): Promise<boolean> {
  const text = await readFile(stamp, 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  try {
    const files = JSON.parse(text) as Record<string, string>;
    for (const [f, h] of Object.entries(files)) if ((await hashOf(f)) !== h) return false;
    return true;
  } catch {
    return false;
  }
}

/** Remembers a passed check: the program's own source files (not lib or node_modules ones) and their hashes. */
async function remember(stamp: string, program: ts.Program): Promise<void> {
  const files: Record<string, string> = {};
  for (const sf of program.getSourceFiles()) {
    if (program.isSourceFileDefaultLibrary(sf) || program.isSourceFileFromExternalLibrary(sf) || sf.fileName.includes('/node_modules/'))
      continue;
    if (sf.fileName.startsWith(path.join(PACKAGE_ROOT, 'dist'))) continue;
    const h = await hashOf(sf.fileName);
    if (h) files[sf.fileName] = h;
  }
  await mkdir(path.dirname(stamp), { recursive: true });
  const tmp = `${stamp}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(files));
  await rename(tmp, stamp);
}
