/**
 * Processes using one node cache, for the multi-process tests: each runs
 * test/filestore/cacheChild.mjs against the built dist/ (as the CLI tests run bin/toil.js),
 * optionally as another user (setpriv), and is killed if a test leaves it running.
 */
import { afterEach } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';

const CHILD = path.join(ROOT, 'test', 'filestore', 'cacheChild.mjs');
export const MiB = 2 ** 20;

export interface ChildEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last JSON line the child printed. */
  json: unknown;
  stderr: string;
}

export interface Child {
  proc: ChildProcess;
  /** Resolves with the first line that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  done: Promise<ChildEnd>;
}

export interface ChildOptions {
  /** The cache directory (default `<test dir>/cache`). */
  dir?: string;
  /** Run as this uid and gid, with no supplementary groups. */
  asUser?: number;
}

/** A fresh temporary directory per test, and cache children that do not outlive it. */
export function useCacheChildren() {
  const t = useTempStore();
  const running = new Set<ChildProcess>();
  afterEach(() => {
    for (const p of running) p.kill('SIGKILL');
    running.clear();
  });

  function child(mode: string, opts: Record<string, unknown>, how: ChildOptions = {}): Child {
    const args = [CHILD, mode, how.dir ?? path.join(t.dir, 'cache'), JSON.stringify(opts)];
    const user = how.asUser === undefined ? [] : ['setpriv', `--reuid=${how.asUser}`, `--regid=${how.asUser}`, '--clear-groups'];
    const [cmd, ...rest] = [...user, process.execPath, ...args] as [string, ...string[]];
    const proc = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
    running.add(proc);
    proc.on('close', () => running.delete(proc));
    return watch(proc);
  }

  async function randomFile(name: string, size: number): Promise<{ file: string; sha: string }> {
    const data = randomBytes(size);
    const file = path.join(t.dir, name);
    await writeFile(file, data);
    return { file, sha: createHash('sha256').update(data).digest('hex') };
  }

  return { t, child, randomFile };
}

function watch(proc: ChildProcess): Child {
  let out = '';
  let stderr = '';
  const waiters: Array<{ prefix: string; resolve: (l: string) => void }> = [];
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const l = out.split('\n').find((x) => x.startsWith(w.prefix));
      if (l !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<ChildEnd>((resolve) =>
    proc.on('close', (code, signal) => {
      const last = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .pop();
      resolve({ code, signal, json: last ? JSON.parse(last) : undefined, stderr });
    }),
  );
  return {
    proc,
    done,
    line: (prefix) =>
      new Promise((resolve, reject) => {
        const l = out.split('\n').find((x) => x.startsWith(prefix));
        if (l !== undefined) return resolve(l);
        waiters.push({ prefix, resolve });
        void done.then((d) => reject(new Error(`child ended (${d.code ?? d.signal}) before '${prefix}': ${d.stderr}`)));
      }),
  };
}

/** The non-empty lines of a file (none if it is missing). */
export async function lines(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
}
