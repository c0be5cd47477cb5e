/**
 * `npm run cluster`: starts the test cluster and prints the kubeconfig path; stops (killing every
 * pod process) on SIGINT/SIGTERM. Options: --nodes N, --port P, --namespace NS, --state-dir DIR,
 * --images (run containers from buildah's local vfs storage; --images-root DIR for another
 * storage root).
 * Used by startTestClusterProcess() with --json (prints one JSON line; stops when stdin closes)
 * and --options '<TestClusterOptions as JSON>'.
 */
import { startTestCluster, type NodeSpec, type TestClusterOptions } from './index.js';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const json = args.includes('--json');
const base = JSON.parse(opt('options') ?? '{}') as TestClusterOptions;
const n = Number(opt('nodes') ?? '2');
const nodes: NodeSpec[] = base.nodes ?? Array.from({ length: n }, (_, i) => ({ name: `node-${i + 1}` }));
const imagesRoot = opt('images-root');
const containerImages =
  args.includes('--images') || imagesRoot
    ? { storageDriver: 'vfs' as const, ...(imagesRoot ? { root: imagesRoot } : {}) }
    : base.containerImages;
const cluster = await startTestCluster({
  ...base,
  nodes,
  ...(containerImages ? { containerImages } : {}),
  ...(opt('port') ? { port: Number(opt('port')) } : {}),
  ...(opt('namespace') ? { namespace: opt('namespace')! } : {}),
  ...(opt('state-dir') ? { stateDir: opt('state-dir')! } : {}),
});
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void cluster.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (json) {
  const { kubeconfigPath, server, issuer, port, namespace, caPath, stateDir } = cluster;
  process.stdout.write(`${JSON.stringify({ kubeconfigPath, server, issuer, port, namespace, caPath, stateDir })}\n`);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
} else {
  process.stdout.write(`${cluster.kubeconfigPath}\n`);
  process.stderr.write(
    `test cluster at ${cluster.server} (nodes: ${nodes.map((x) => x.name).join(', ')})${containerImages ? ', containers from buildah images' : ''}\n` +
      `  export KUBECONFIG=${cluster.kubeconfigPath}\n  stop with Ctrl-C\n`,
  );
}
