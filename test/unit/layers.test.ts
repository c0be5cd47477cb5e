/**
 * Dependencies point one way: cli → workflow → leader/worker → batch, jobstore, filestore → job,
 * and the small shared modules (errors, size, log, …) import none of the layers. Type-only
 * imports count too: a layer that names an upper layer's types depends on it. (Import cycles
 * inside a layer are caught by `npm run check:cycles`.)
 */
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/run.js';

const SRC = path.join(ROOT, 'src');
/** Higher may import lower or equal; the package index sits on top of everything. */
const RANK: Record<string, number> = { cli: 5, workflow: 4, leader: 3, worker: 3, batch: 2, jobstore: 2, filestore: 2, job: 1 };
const SHARED = 0;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

function rankOf(file: string): number {
  const rel = path.relative(SRC, file);
  if (rel === 'index.ts') return 6;
  const layer = rel.includes(path.sep) ? rel.split(path.sep)[0]! : undefined;
  return layer === undefined ? SHARED : (RANK[layer] ?? SHARED);
}

/** Relative imports of a file (static, dynamic, `import type`, re-exports). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

describe('layers', () => {
  it('no file imports from a layer above its own', () => {
    const upward: string[] = [];
    for (const file of sourceFiles(SRC)) {
      for (const target of importsOf(file)) {
        if (rankOf(target) > rankOf(file)) upward.push(`${path.relative(SRC, file)} → ${path.relative(SRC, target)}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('the rule can fail: it sees type-only and dynamic imports', () => {
    const probe = path.join(SRC, 'batch', 'types.ts');
    expect(importsOf(probe).map((f) => path.relative(SRC, f))).toContain(path.join('job', 'requirements.ts'));
    expect(rankOf(path.join(SRC, 'worker', 'worker.ts'))).toBeGreaterThan(rankOf(probe));
  });
});
