/**
 * Files written for people (a trace, a stats file, a report): checked before any work is done,
 * so that a path that cannot be written is one clear line (a UsageError), and written whole or
 * not at all (a partial file beside it, renamed when complete).
 */
import { constants } from 'node:fs';
import { access, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './errors.js';

/** Throws a UsageError naming `what` (`--output x.html`) unless `file` can be written: no directory, its own directory there and writable. */
export async function checkWritable(file: string, what: string): Promise<void> {
  const s = await stat(file).catch(() => undefined);
  if (s?.isDirectory()) throw new UsageError(`${what}: is a directory`);
  const dir = path.dirname(path.resolve(file));
  try {
    await access(s ? file : dir, constants.W_OK);
  } catch {
    throw new UsageError(`${what}: cannot be written (${s ? 'not writable' : `no writable directory ${dir}`})`);
  }
}

/** Writes `file` whole or not at all; a failure is a UsageError naming the file. */
export async function writeWhole(file: string, data: string): Promise<void> {
  const partial = `${file}.partial-${process.pid}`;
  try {
    await writeFile(partial, data);
    await rename(partial, file);
  } catch (e) {
    await rm(partial, { force: true });
    throw new UsageError(`cannot write ${file}: ${(e as Error).message}`);
  }
}
