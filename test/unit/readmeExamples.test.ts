/** The README's TypeScript examples that name a file in examples/ are that file's code (the engine tests run them). */
import { describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from '../helpers/run.js';

async function namedBlocks(): Promise<Array<[string, string]>> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  const out: Array<[string, string]> = [];
  for (const m of readme.matchAll(/```ts\n\/\/ (examples\/[\w.-]+\.ts)\n([\s\S]*?)```/g)) out.push([m[1]!, m[2]!]);
  return out;
}

describe('README examples', () => {
  it('name their files, and each is the code of its file', async () => {
    const blocks = await namedBlocks();
    expect(blocks.map(([f]) => f)).toEqual(
      expect.arrayContaining(['examples/helloworld.ts', 'examples/fanout.ts', 'examples/classjobs.ts', 'examples/programmatic.ts']),
    );
    for (const [file, code] of blocks) {
      const text = await readFile(path.join(ROOT, file), 'utf8');
      expect({ file, contained: text.includes(code) }).toEqual({ file, contained: true });
    }
  });
});
