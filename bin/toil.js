#!/usr/bin/env node
// Refuses to start on a Node that package.json's "engines" does not allow, before loading
// anything that needs a newer one: one line naming the Node needed and the one running, exit 2.
import { readFileSync } from 'node:fs';
import { nodeVersionProblem } from '../dist/nodeVersion.js';

/** The "engines.node" range of our package.json (none if it cannot be read: nothing is refused). */
function enginesRange() {
  try {
    const range = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))?.engines?.node;
    return typeof range === 'string' ? range : undefined;
  } catch {
    return undefined;
  }
}

const problem = nodeVersionProblem(enginesRange(), process.version, process.execPath);
if (problem) {
  process.stderr.write(`toil: ${problem}\n`);
  process.exit(2);
}

// Stack traces of workflow code name the workflow's own files (bundles carry source maps).
process.setSourceMapsEnabled(true);

const { main } = await import('../dist/cli/main.js');
await main(process.argv);
