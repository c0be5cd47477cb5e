/**
 * Stack traces that name a workflow's own files and lines: a workflow bundle carries an inline
 * source map, which Node reads as it loads a module, and only while source maps are on. Those of
 * packages stay off (`nodeModules: false`): Node would read every package module's map as it
 * loads it, and @kubernetes/client-node alone ships about a thousand (a tenth of a second of CPU
 * at each start of a leader on Kubernetes). This package's own maps are read: its frames name
 * src/ when TOIL_DEBUG shows them.
 */
import module from 'node:module';

/** Turns source maps on for the modules loaded from now on, those under node_modules excepted. */
export function mapWorkflowFrames(): void {
  // Node 22.14 and later; before, only all modules or none
  if (typeof module.setSourceMapsSupport === 'function') module.setSourceMapsSupport(true, { nodeModules: false });
  else process.setSourceMapsEnabled(true);
}
