/**
 * Removing a directory tree without listing any directory whole: each is read as a stream
 * (`opendir`), its entries removed a bounded number at a time as they come. `fs.rm` with
 * `recursive` reads a directory's every name into one array and starts on them all at once,
 * which for a store's `jobs/` of a million records is hundreds of megabytes.
 *
 * Entries removed while a directory is read may make the read skip others (POSIX leaves it
 * open), so a directory that is not empty at the end is read again, a bounded number of times.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { JobStoreError } from '../../errors.js';

const PARALLEL = 32;
const PASSES = 5;

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Removes `target` (a directory tree or a file); nothing if it does not exist. */
export async function removeTree(target: string): Promise<void> {
  for (let pass = 1; ; pass++) {
    let dir;
    try {
      dir = await fs.opendir(target, { bufferSize: 128 });
    } catch (e) {
      if (code(e) === 'ENOENT') return;
      if (code(e) === 'ENOTDIR') return fs.rm(target, { force: true });
      throw e;
    }
    let running: Array<Promise<void>> = [];
    for await (const ent of dir) {
      const p = path.join(target, ent.name);
      running.push(ent.isDirectory() ? removeTree(p) : fs.rm(p, { force: true }));
      if (running.length >= PARALLEL) {
        await Promise.all(running);
        running = [];
      }
    }
    await Promise.all(running);
    try {
      return await fs.rmdir(target);
    } catch (e) {
      if (code(e) === 'ENOENT') return;
      if (code(e) !== 'ENOTEMPTY' && code(e) !== 'EEXIST') throw e;
      if (pass >= PASSES) throw new JobStoreError('JOBSTORE', `cannot remove ${target}: entries keep appearing in it`);
    }
  }
}
