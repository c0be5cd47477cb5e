/**
 * Loading a workflow bundle: it is written once per hash to a local cache directory and
 * imported, with a fresh definition registry active so that its jobs land there. Loads are
 * serialised and cached by hash, so a warm worker imports each bundle once.
 */
import { mkdir, writeFile, rename, access } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { JobStoreError, UsageError } from '../errors.js';
import { collectDefinitions, type Registry } from '../job/registry.js';
import type { JobStore } from '../jobstore/types.js';

/** Where the loading process puts the toil-ts API for bundles to pick up. */
export const API_SYMBOL = 'toil-ts.api';

export interface LoadedBundle {
  hash: string;
  registry: Registry;
  module: Record<string, unknown>;
}

const loaded = new Map<string, Promise<LoadedBundle>>();
let chain: Promise<unknown> = Promise.resolve();

export function bundleSharedName(hash: string): string {
  return `bundle-${hash}.mjs`;
}

function cacheDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'u';
  return path.join(process.env['TOIL_BUNDLE_CACHE'] ?? os.tmpdir(), `toil-ts-bundles-${uid}`);
}

/** Loads bundle code (already at hand) by its hash. */
export function loadBundleCode(hash: string, code: string): Promise<LoadedBundle> {
  return load(hash, async () => code);
}

/** Loads the bundle with this hash from the job store. */
export function loadBundleFromStore(store: JobStore, hash: string): Promise<LoadedBundle> {
  return load(hash, async () => {
    const got = await store.readShared(bundleSharedName(hash));
    if (!got) throw new JobStoreError('NOT_FOUND', `workflow bundle ${hash.slice(0, 12)} is missing from ${store.locator}`);
    return got.value.toString();
  });
}

function load(hash: string, code: () => Promise<string>): Promise<LoadedBundle> {
  const cached = loaded.get(hash);
  if (cached) return cached;
  const p = (async () => {
    const dir = cacheDir();
    const file = path.join(dir, `${hash}.mjs`);
    try {
      await access(file);
    } catch {
      await mkdir(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
      await writeFile(tmp, await code());
      await rename(tmp, file);
    }
    const api = await import('../job/api.js');
    (globalThis as Record<symbol, unknown>)[Symbol.for(API_SYMBOL)] = api;
    const run = chain.then(() => collectDefinitions(() => import(pathToFileURL(file).href)));
    chain = run.catch(() => undefined);
    let result;
    try {
      result = await run;
    } catch (e) {
      throw new UsageError(`the workflow module failed to load: ${(e as Error).stack ?? String(e)}`);
    }
    return { hash, registry: result.registry, module: result.module as Record<string, unknown> };
  })();
  loaded.set(hash, p);
  p.catch(() => loaded.delete(hash));
  return p;
}
