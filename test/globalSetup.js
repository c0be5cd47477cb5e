/**
 * Once before the test run: worker pods run as the image's non-root user (1000), and on the test
 * cluster a pod without an image runs this checkout's `node` and CLI. The checkout, and every
 * directory above it, must let that user pass through (search permission only; nothing is made
 * readable that was not), as a fresh clone under a private temporary directory does not.
 */
import { chmodSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export default function globalSetup() {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  for (let dir = root; ; dir = path.dirname(dir)) {
    const mode = statSync(dir).mode & 0o7777;
    if ((mode & 0o001) === 0) chmodSync(dir, mode | 0o001);
    if (dir === path.dirname(dir)) break;
  }
}
