/**
 * Where the workflow module comes from: a path, a `file:` URL, or a URL to fetch —
 * `http(s)://` or `s3://` — into a private temporary directory (keeping the file's name, so
 * that esbuild picks its loader) before bundling. A fetched module must be self-contained: its
 * relative imports have nothing to resolve against.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';
import { FETCH_LIMITS, fetchToFile, redactUrl, type FetchLimits } from '../filestore/download.js';
import { safeBasename } from '../jobstore/types.js';
import { isModuleFile } from './bundle.js';

export interface WorkflowSource {
  /** The local file to bundle. */
  file: string;
  /** How messages and logs name the workflow (a URL without credentials or query). */
  name: string;
  /** Set when the module was fetched: its URL (as `name`) and size. */
  fetched?: { bytes: number };
  /** Removes a fetched copy; nothing for a local file. */
  release(): Promise<void>;
}

const FETCHED_SCHEMES = new Set(['http:', 'https:', 's3:']);

function local(file: string, name = file): WorkflowSource {
  return { file, name, release: async () => {} };
}

/** The file name a URL's path ends with, decoded. */
function urlBasename(u: URL): string {
  const last = u.pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

function parseUrl(arg: string): URL {
  try {
    return new URL(arg);
  } catch {
    throw new UsageError(`invalid workflow URL '${redactUrl(arg)}'`);
  }
}

/** Makes the workflow argument (path or URL) a local file; fetching is bounded by `limits`. */
export async function obtainWorkflow(arg: string, limits: FetchLimits = FETCH_LIMITS): Promise<WorkflowSource> {
  if (!/^[a-z][a-z0-9+.-]+:/i.test(arg)) return local(arg);
  const u = parseUrl(arg);
  const name = redactUrl(arg);
  if (u.protocol === 'file:') {
    try {
      return local(fileURLToPath(u), name);
    } catch (e) {
      throw new UsageError(`invalid workflow URL '${name}': ${(e as Error).message}`);
    }
  }
  if (!FETCHED_SCHEMES.has(u.protocol))
    throw new UsageError(`unsupported workflow URL '${name}': use a path, or a file:, http(s):// or s3:// URL`);
  const base = safeBasename(urlBasename(u));
  if (!isModuleFile(base)) throw new UsageError(`workflow URL must name a .ts or .js file: ${name}`);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-workflow-'));
  const release = () => rm(dir, { recursive: true, force: true });
  try {
    const bytes = await fetchToFile(arg, path.join(dir, base), { what: 'workflow', limits });
    return { file: path.join(dir, base), name, fetched: { bytes }, release };
  } catch (e) {
    await release();
    throw e;
  }
}
