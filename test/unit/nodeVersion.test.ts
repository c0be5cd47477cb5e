/** The Node version check that bin/toil.js makes before anything else: package.json's engines range. */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { nodeVersionProblem, satisfies } from '../../src/nodeVersion.js';
import { ROOT } from '../helpers/run.js';

describe('satisfies', () => {
  it.each([
    ['v22.0.0', '>=22', true],
    ['v20.20.2', '>=22', false],
    ['v23.1.0', '>=22', true],
    ['v22.4.9', '>=22.5', false],
    ['v22.5.0', '^22.5.0', true],
    ['v23.0.0', '^22.5.0', false],
    ['v0.2.9', '^0.2.3', true],
    ['v0.3.0', '^0.2.3', false],
    ['v22.5.7', '~22.5.1', true],
    ['v22.6.0', '~22.5.1', false],
    ['v22.9.1', '22.x', true],
    ['v23.0.0', '22', false],
    ['v20.1.0', '^18 || >=20.1', true],
    ['v19.0.0', '^18 || >=20.1', false],
    ['v22.1.0', '>= 22 < 23', true],
    ['v23.0.0', '>=22 <23', false],
    ['v22.3.0', '22.0.0 - 22.3', true],
    ['v22.4.0', '22.0.0 - 22.3', false],
    ['v24.0.0-nightly2025', '>=22', true],
    ['v22.0.0', '*', true],
  ])('%s in %s: %s', (version, range, expected) => {
    expect(satisfies(version, range)).toBe(expected);
  });

  it('does not guess at a range it does not understand', () => {
    expect(satisfies('v22.0.0', 'latest')).toBeUndefined();
    expect(nodeVersionProblem('latest', 'v20.0.0', '/usr/bin/node')).toBeUndefined();
  });

  it("understands our own package.json's range, which refuses Node 20 and accepts Node 22", () => {
    const range = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(satisfies('v20.20.2', range)).toBe(false);
    expect(satisfies('v22.23.3', range)).toBe(true);
    expect(nodeVersionProblem(range, 'v20.20.2', '/usr/bin/node')).toBe(
      `toil-ts needs Node ${range} (package.json "engines"); this is Node v20.20.2 (/usr/bin/node)`,
    );
  });
});
