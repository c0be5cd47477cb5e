/**
 * One image build at a time on this machine. Test files run in parallel processes, and several
 * of them need the same image: without a lock, each that finds the content-keyed cache empty
 * builds it too (the same `npm ci` and compile, twice or three times over, on a machine that has
 * two cores). With it, the first builds and the others wait, then find the cache filled.
 *
 * The lock is a file created exclusively (`wx`) holding its owner's pid; a lock whose owner is
 * gone (killed mid-build), or that never got a pid, is taken over. A waiter says once what it
 * waits for, and gives up after `timeoutMs` naming the owner.
 */
import { open, readFile, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildLog } from './baseImage.js';

const POLL_MS = 500;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid in a lock file, or undefined when it holds none (being written, or garbage). */
async function ownerOf(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A lock file left without a pid (its owner died between creating and writing it). */
async function olderThan(file: string, ms: number): Promise<boolean> {
  const st = await stat(file).catch(() => undefined);
  return st !== undefined && Date.now() - st.mtimeMs > ms;
}

async function tryLock(file: string): Promise<boolean> {
  try {
    const h = await open(file, 'wx');
    await h.writeFile(String(process.pid));
    await h.close();
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

export interface BuildLockOptions {
  log: BuildLog;
  /** Longest wait for another build (default 20 min: a cold base image and the Dockerfile). */
  timeoutMs?: number;
  /** Directory of the lock files (default the system's temporary directory). */
  dir?: string;
}

/** Runs `build` holding the machine-wide lock `name`. */
export async function withBuildLock<T>(name: string, opts: BuildLockOptions, build: () => Promise<T>): Promise<T> {
  const file = path.join(opts.dir ?? os.tmpdir(), `toil-ts-build-${name}.lock`);
  const deadline = Date.now() + (opts.timeoutMs ?? 20 * 60_000);
  let told = false;
  while (!(await tryLock(file))) {
    const owner = await ownerOf(file);
    if (owner !== undefined ? !alive(owner) : await olderThan(file, 10_000)) {
      opts.log(`taking over the ${name} build lock of pid ${owner ?? 'unknown'}, which is gone`);
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for the ${name} build of pid ${owner ?? 'unknown'} (${file})`);
    if (!told) opts.log(`waiting for the ${name} build of pid ${owner ?? 'unknown'} to finish (${file})`);
    told = true;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  try {
    return await build();
  } finally {
    await unlink(file).catch(() => undefined);
  }
}
