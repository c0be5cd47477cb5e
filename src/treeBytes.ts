/** How much a directory holds, read as the kubelet reads an emptyDir's use: the sizes of the files under it. */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

/** Bytes of the regular files under `dir` (0 if it is not there; files that go while it is read count as nothing). */
export async function treeBytes(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  let total = 0;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await treeBytes(p);
    else if (e.isFile()) total += (await lstat(p).catch(() => undefined))?.size ?? 0;
  }
  return total;
}
