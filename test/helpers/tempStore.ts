/** Per-test temporary directories for jest suites. */
import { afterEach, beforeEach } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from './run.js';

/** A fresh temporary directory per test, and a job store path inside it. */
export function useTempStore(base?: string): { readonly dir: string; readonly store: string; count(name: string): Promise<number> } {
  const state = { dir: '', store: '', cleanup: async () => {} };
  beforeEach(async () => {
    const t = await tempDir('toil-test-', base);
    state.dir = t.dir;
    state.store = path.join(t.dir, 'store');
    state.cleanup = t.cleanup;
  });
  afterEach(async () => {
    await state.cleanup();
  });
  return {
    get dir() {
      return state.dir;
    },
    get store() {
      return state.store;
    },
    /** The counter a test workflow keeps with bump(dir, name). */
    count: (name: string) => readFile(path.join(state.dir, `count-${name}`), 'utf8').then(Number, () => 0),
  };
}
