/**
 * Overlays made as users make them: a copy of manifests/overlays/example (or `toil init
 * --kubernetes`), changed on the lines marked `# EDIT` only, as its comments ask.
 */
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from './run.js';

export const MANIFESTS = path.join(ROOT, 'manifests');
export const EXAMPLE = path.join(MANIFESTS, 'overlays', 'example');
export const EDIT_MARK = '# EDIT';

/** A marked line: `key: value # EDIT…` or `- value # EDIT…`, its value apart. */
const MARKED = /^(\s*(?:- |[\w./-]+: ))(.*?)(\s+# EDIT\b.*)$/;

/** The lines marked EDIT in a file, as [line before the value, value]. */
export function markedLines(text: string): Array<{ key: string; value: string }> {
  return text
    .split('\n')
    .map((l) => MARKED.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ key: m[1]!.trim(), value: m[2]! }));
}

/** Sets the value of the one line marked EDIT whose value is `current`, keeping its comment. */
export async function setMarked(file: string, current: string, value: string): Promise<void> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  const at = lines.flatMap((l, i) => (MARKED.exec(l)?.[2] === current ? [i] : []));
  if (at.length !== 1) throw new Error(`${file}: ${at.length} lines marked EDIT with the value '${current}'`);
  lines[at[0]!] = lines[at[0]!]!.replace(MARKED, (_m, head: string, _v: string, tail: string) => `${head}${value}${tail}`);
  await writeFile(file, lines.join('\n'));
}

/** The text of each file of a folder (not below it). */
export async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true })) if (e.isFile()) out[e.name] = await readFile(path.join(dir, e.name), 'utf8');
  return out;
}

/** The lines of `after` that differ from `before`'s (files of as many lines, edited in place). */
export function changedLines(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.entries(after).flatMap(([f, text]) => {
    const old = (before[f] ?? '').split('\n');
    return text.split('\n').flatMap((l, i) => (l === old[i] ? [] : [`${f}: ${l}`]));
  });
}

/** A copy of the example overlay in `dir`, its base named relative to it (the one marked line that must change elsewhere). */
export async function copyExample(dir: string): Promise<void> {
  await cp(EXAMPLE, dir, { recursive: true });
  await setMarked(path.join(dir, 'kustomization.yaml'), '../../base', path.relative(dir, path.join(MANIFESTS, 'base')));
}
