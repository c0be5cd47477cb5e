/**
 * Container images from buildah's local storage (no daemon, no registry): the kubelet asks
 * `lookup(ref)` for an image's OCI config (entrypoint, cmd, env, working dir, user) and a
 * read-only root file system. One root per image id is kept as a buildah working container
 * named from the id (`imageRootName`), reused by every pod of that image and by later cluster
 * runs; a rebuilt image has a new id and so gets a new root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { runCommand } from '../images/buildah.js';

/** Where images live: buildah's storage (`true`: buildah's own defaults). */
export interface ContainerImagesOptions {
  /** storage driver, as `buildah --storage-driver` (images built with `--storage-driver vfs`) */
  storageDriver?: 'vfs';
  /** storage root, as `buildah --root` (default /var/lib/containers/storage) */
  root?: string;
  /** run root, as `buildah --runroot` (default /run/containers/storage) */
  runRoot?: string;
}
export type ContainerImagesOption = true | ContainerImagesOptions;

/** An image's run configuration (OCI image config), as the kubelet uses it. */
export interface LocalImage {
  id: string;
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  workingDir?: string;
  user: string;
}

export type ImageLookup = { kind: 'ready'; image: LocalImage; root: string } | { kind: 'missing' } | { kind: 'failed'; message: string };

const strings = z.array(z.string()).nullish();
const InspectOutput = z.object({
  FromImageID: z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 image id'),
  OCIv1: z.object({
    config: z
      .object({
        Entrypoint: strings,
        Cmd: strings,
        Env: strings,
        WorkingDir: z.string().nullish(),
        User: z.string().nullish(),
      })
      .nullish(),
  }),
});

/** Name of the buildah container that holds the read-only root of an image id. */
export function imageRootName(imageId: string): string {
  return `toil-ts-kubelet-root-${imageId.slice(0, 16)}`;
}

/** `buildah` global flags for the storage options. */
export function buildahGlobalArgs(o: ContainerImagesOption): string[] {
  if (o === true) return [];
  return [
    ...(o.storageDriver ? ['--storage-driver', o.storageDriver] : []),
    ...(o.root ? ['--root', o.root] : []),
    ...(o.runRoot ? ['--runroot', o.runRoot] : []),
  ];
}

/** Throws a clear error when buildah cannot be run. */
export function requireBuildah(): void {
  const r = spawnSync('buildah', ['--version'], { stdio: 'ignore' });
  if (r.error || r.status !== 0) {
    throw new Error('test cluster: containerImages needs buildah (no daemon) to read local images: apt-get install -y buildah');
  }
}

function envMap(list: readonly string[] | null | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return env;
}

/** Parses `buildah inspect --type image` output (throws, naming the field, when it is not what we depend on). */
export function parseInspect(json: string): LocalImage {
  const out = InspectOutput.parse(JSON.parse(json));
  const c = out.OCIv1.config ?? {};
  return {
    id: out.FromImageID,
    ...(c.Entrypoint ? { entrypoint: c.Entrypoint } : {}),
    ...(c.Cmd ? { cmd: c.Cmd } : {}),
    env: envMap(c.Env),
    ...(c.WorkingDir ? { workingDir: c.WorkingDir } : {}),
    user: c.User ?? '',
  };
}

class Buildah {
  constructor(private global: string[]) {}

  async run(args: string[]): Promise<{ ok: true; stdout: string } | { ok: false; stderr: string }> {
    const r = await runCommand('buildah', [...this.global, ...args]).catch((e: Error) => ({ code: 1, stdout: '', stderr: e.message }));
    return r.code === 0 ? { ok: true, stdout: r.stdout } : { ok: false, stderr: (r.stderr || r.stdout).trim() };
  }
}

/** An answer not taken within this time is stale (its pod may be gone) and is looked up again. */
const ANSWER_TTL_MS = 2000;

/**
 * Image lookups for the kubelet. lookup() never blocks: the first call for a reference starts
 * the work (inspect, and on first use of an image id a copy of its root) and answers undefined;
 * `onSettled` fires when the answer is ready, and the next call takes it. Each container start
 * thus sees the image as it is in storage at that moment.
 */
export class ContainerImages {
  private buildah: Buildah;
  private answers = new Map<string, { done?: ImageLookup; at?: number }>();
  private roots = new Map<string, Promise<string>>();

  constructor(
    options: ContainerImagesOption,
    private onSettled: () => void,
  ) {
    this.buildah = new Buildah(buildahGlobalArgs(options));
  }

  lookup(ref: string): ImageLookup | undefined {
    const a = this.answers.get(ref);
    if (a?.done && Date.now() - a.at! <= ANSWER_TTL_MS) {
      this.answers.delete(ref);
      return a.done;
    }
    if (a && !a.done) return undefined;
    const entry: { done?: ImageLookup; at?: number } = {};
    this.answers.set(ref, entry);
    void this.find(ref).then((r) => {
      entry.done = r;
      entry.at = Date.now();
      this.onSettled();
    });
    return undefined;
  }

  private async find(ref: string): Promise<ImageLookup> {
    const r = await this.buildah.run(['inspect', '--type', 'image', ref]);
    if (!r.ok)
      return /image not known|not found|does not exist/i.test(r.stderr) ? { kind: 'missing' } : { kind: 'failed', message: r.stderr };
    let image: LocalImage;
    try {
      image = parseInspect(r.stdout);
    } catch (e) {
      return { kind: 'failed', message: `unexpected buildah inspect output for ${ref}: ${(e as Error).message}` };
    }
    try {
      return { kind: 'ready', image, root: await this.root(image.id) };
    } catch (e) {
      return { kind: 'failed', message: (e as Error).message };
    }
  }

  /** The read-only root of an image id (made once; dropped from the cache if it disappears). */
  private async root(id: string): Promise<string> {
    const cached = this.roots.get(id);
    if (cached) {
      const dir = await cached.catch(() => '');
      if (dir && existsSync(dir)) return dir;
      this.roots.delete(id);
    }
    const made = this.makeRoot(id);
    this.roots.set(id, made);
    return made;
  }

  private async makeRoot(id: string): Promise<string> {
    const name = imageRootName(id);
    let m = await this.buildah.run(['mount', name]);
    if (!m.ok) {
      const from = await this.buildah.run(['from', '--pull-never', '--name', name, id]);
      if (!from.ok && !/already in use/.test(from.stderr)) throw new Error(`buildah from ${id}: ${from.stderr}`);
      m = await this.buildah.run(['mount', name]);
    }
    if (!m.ok) throw new Error(`buildah mount ${name}: ${m.stderr}`);
    return m.stdout.trim();
  }
}

/**
 * Removes the kept root of an image (by reference or id) from buildah's storage, so that
 * `buildah rmi` of the image succeeds. Returns false when there was none.
 */
export async function removeImageRoot(options: ContainerImagesOption, image: string): Promise<boolean> {
  const buildah = new Buildah(buildahGlobalArgs(options));
  let id = image;
  if (!/^[0-9a-f]{64}$/.test(image)) {
    const r = await buildah.run(['inspect', '--type', 'image', '--format', '{{.FromImageID}}', image]);
    if (!r.ok) return false;
    id = r.stdout.trim();
  }
  return (await buildah.run(['rm', imageRootName(id)])).ok;
}
