#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// Stack traces of workflow code name the workflow's own files (bundles carry source maps).
process.setSourceMapsEnabled(true);

await main(process.argv);
