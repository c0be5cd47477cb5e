/**
 * `toil init --kubernetes [dir]`: a run of one's own on Kubernetes, in any folder, that renders
 * with no network: the example overlay (manifests/overlays/example: kustomization.yaml,
 * leader.yaml, config.yaml, workflow.ts) with this toil-ts's base and install parts copied beside
 * it, in `toil-ts/`, and its `resources:` entry naming that copy. The lines to change are marked
 * EDIT. Writes nothing over existing files.
 */
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, Scalar } from 'yaml';
import { UsageError } from '../errors.js';

const MANIFESTS = fileURLToPath(new URL('../../manifests', import.meta.url));
/** Where the copy of this toil-ts's manifests goes, inside the new folder. */
const VENDORED = 'toil-ts';

async function entries(dir: string): Promise<string[] | undefined> {
  return readdir(dir).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
}

/** The overlay's kustomization with its base named as the copy beside it (its EDIT comment kept). */
function withVendoredBase(text: string): string {
  const doc = parseDocument(text);
  const base = doc.getIn(['resources', 0], true);
  if (!(base instanceof Scalar)) throw new UsageError(`${MANIFESTS}/overlays/example/kustomization.yaml names no base in resources:`);
  base.value = `${VENDORED}/base`;
  return doc.toString();
}

/** Writes the overlay into `dir`; returns what to tell the user. */
export async function initKubernetes(dir: string): Promise<string> {
  const root = path.resolve(dir);
  const example = path.join(MANIFESTS, 'overlays', 'example');
  const files = await entries(example);
  if (!files) throw new UsageError(`this toil-ts has no Kubernetes manifests (${example} is missing)`);
  const taken = ((await entries(root)) ?? []).filter((f) => files.includes(f) || f === VENDORED);
  if (taken.length > 0) throw new UsageError(`${taken.join(', ')} already in ${root}: toil init writes nothing over existing files`);
  await mkdir(root, { recursive: true });
  for (const f of files) {
    const text = await readFile(path.join(example, f), 'utf8');
    await writeFile(path.join(root, f), f === 'kustomization.yaml' ? withVendoredBase(text) : text);
  }
  for (const part of ['base', 'install']) await cp(path.join(MANIFESTS, part), path.join(root, VENDORED, part), { recursive: true });
  const shown = path.relative(process.cwd(), root) || '.';
  return [
    `toil init: wrote a run of your own in ${root}: ${files.join(', ')}, and ${VENDORED}/ (the base it uses and the install part)`,
    `next: edit the lines marked EDIT, then`,
    `  kubectl apply -k ${path.join(shown, VENDORED, 'install')}   # once per namespace`,
    `  kubectl replace --force -k ${shown}   # runs it, and again after an edit`,
  ].join('\n');
}
