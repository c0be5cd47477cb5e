/**
 * Builds the project's `Dockerfile`, unchanged, with buildah (no daemon): `buildah bud
 * --storage-driver vfs --isolation chroot --pull-never`. The machine's extra certificate
 * authority (NODE_EXTRA_CA_CERTS) reaches `npm ci` as a build secret, never as a layer.
 *
 * Cached by content: the build context (exactly the files the Dockerfile and .dockerignore let
 * in) and the base image's ID hash to a tag; when an image with that tag exists it is tagged
 * with the release name again and nothing is rebuilt.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASE_IMAGE_NAME, ensureBaseImage, type BuildLog, type BuiltImage } from './baseImage.js';
import { buildah, imageId, runCommand, STORAGE_ARGS } from './buildah.js';
import { withBuildLock } from './buildLock.js';

/** The toil-ts checkout this package lives in (`test/testbed/src/images` → the project root). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../..', import.meta.url));
/** What goes into the build context (the allow-list of .dockerignore). */
const CONTEXT = [
  'Dockerfile',
  '.dockerignore',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'src',
  'bin',
  'examples',
];

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** The image name the manifests use: `toil-ts:<package version>`. */
export async function releaseImageName(): Promise<string> {
  return `toil-ts:${await version()}`;
}

async function filesUnder(rel: string): Promise<string[]> {
  const full = path.join(PROJECT_ROOT, rel);
  const entries = await readdir(full, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return existsSync(full) ? [rel] : [];
  const nested = await Promise.all(entries.map((e) => filesUnder(path.join(rel, e.name))));
  return nested.flat();
}

/** sha256 over the build context's paths and contents and the base image's ID. */
export async function contextHash(baseId: string): Promise<string> {
  const h = createHash('sha256').update(baseId);
  const files = (await Promise.all(CONTEXT.map(filesUnder))).flat().sort();
  for (const f of files) h.update(`\0${f}\0`).update(await readFile(path.join(PROJECT_ROOT, f)));
  return h.digest('hex').slice(0, 16);
}

async function gitRevision(): Promise<string> {
  const r = await runCommand('git', ['rev-parse', 'HEAD'], { cwd: PROJECT_ROOT });
  return r.code === 0 ? r.stdout.trim() : 'unknown';
}

async function budArgs(tags: string[]): Promise<string[]> {
  const args = ['bud', '--isolation', 'chroot', '--pull-never', '--build-arg', `BASE_IMAGE=${BASE_IMAGE_NAME}`];
  args.push(
    '--build-arg',
    `VERSION=${await version()}`,
    '--build-arg',
    `REVISION=${await gitRevision()}`,
    '--build-arg',
    `CREATED=${new Date().toISOString()}`,
  );
  const ca = process.env['NODE_EXTRA_CA_CERTS'];
  if (ca && existsSync(ca)) args.push('--secret', `id=extra_ca,src=${ca}`);
  for (const t of tags) args.push('-t', t);
  return [...args, PROJECT_ROOT];
}

/**
 * Removes the images of earlier contexts (vfs keeps a full copy of each) and untagged leftovers.
 * Containers still using them (the test cluster keeps one root per image id) go with them.
 */
async function pruneSuperseded(current: string): Promise<void> {
  const listing = await buildah(['images', '--format', '{{.Name}}:{{.Tag}}']);
  const stale = listing.split('\n').filter((n) => n.startsWith('localhost/toil-ts:ctx-') && n !== current);
  for (const name of stale) await runCommand('buildah', [...STORAGE_ARGS, 'rmi', '--force', name]);
  await runCommand('buildah', [...STORAGE_ARGS, 'rmi', '--prune']);
}

export interface ToilImage extends BuiltImage {
  base: BuiltImage;
}

/**
 * Makes sure `toil-ts:<version>` in local storage is built from the current sources: builds the
 * stand-in base when needed, then the Dockerfile when the context changed. Test files that need
 * it at once build it once: the others wait for the build lock, then find it cached.
 */
export function ensureToilImage(log: BuildLog = () => undefined): Promise<ToilImage> {
  return withBuildLock('toil-image', { log }, () => ensureToilImageNow(log));
}

async function ensureToilImageNow(log: BuildLog): Promise<ToilImage> {
  const base = await ensureBaseImage(log);
  const started = Date.now();
  const name = await releaseImageName();
  const cacheTag = `localhost/toil-ts:ctx-${await contextHash(base.id)}`;
  const cached = await imageId(cacheTag);
  if (cached) {
    if ((await imageId(name)) !== cached) await buildah(['tag', cacheTag, name]);
    return { name, id: cached, built: false, seconds: (Date.now() - started) / 1000, base };
  }
  log(`building ${name} from the Dockerfile (${cacheTag})`);
  await buildah(await budArgs([name, cacheTag]), {
    echo: (chunk) => {
      for (const l of chunk.split('\n')) if (/^STEP \d+\/\d+/.test(l)) log(l);
    },
  });
  const id = (await imageId(cacheTag))!;
  await pruneSuperseded(cacheTag);
  return { name, id, built: true, seconds: (Date.now() - started) / 1000, base };
}
