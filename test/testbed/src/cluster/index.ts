/**
 * A local Kubernetes test cluster: API server (HTTPS on 127.0.0.1, its own CA), job controller,
 * scheduler, garbage collector, kubelets that run pods as local processes in private mount
 * namespaces, RBAC for service-account tokens, and fault injection. See README.md.
 *
 *   const cluster = await startTestCluster({ nodes: [{ name: 'node-1', cpu: '4', memory: '8Gi' }] });
 *   // KUBECONFIG=cluster.kubeconfigPath kubectl get pods ... / new KubeConfig().loadFromFile(...)
 *   await cluster.stop();
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { bootstrapObjects, createKubernetesService, kubeconfigText } from './bootstrap.js';
import { createCA, issueCert, type Cert } from './certs.js';
import { RemoteControl } from './control.js';
import { clusterHandle } from './handle.js';
import { prepareHost } from './host.js';
import { ClusterRuntime } from './runtime.js';
import type { NodeSpec, TestCluster, TestClusterOptions } from './types.js';

export type { KubeObject, NodeSpec, ObjectMeta, OpenWatch, TestCluster, TestClusterFaults, TestClusterOptions } from './types.js';
export type { RequestFault } from './faults.js';
export type { ImageConfig } from './kubelet.js';
export { imageRootName, removeImageRoot, type ContainerImagesOption, type ContainerImagesOptions } from './images.js';
export { startTestClusterProcess, type TestClusterProcess } from './process.js';

const DEFAULT_NODES: NodeSpec[] = [{ name: 'node-1' }, { name: 'node-2' }];
const SERVING_NAMES = ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'];

/** The API server's certificate: 127.0.0.1 and the in-cluster names of the `kubernetes` Service. */
function servingCert(ca: Cert): { cert: string; key: string } {
  const serving = issueCert(ca, 'kube-apiserver', { ips: ['127.0.0.1'], dns: SERVING_NAMES, usages: ['server'] });
  return { cert: serving.certPem, key: serving.keyPem };
}

/** Starts a test cluster in this process. */
export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const host = prepareHost(options);
  const namespace = options.namespace ?? 'default';
  const ca = createCA();
  const tls = servingCert(ca);
  const caPath = join(host.stateDir, 'ca.crt');
  writeFileSync(caPath, ca.certPem);
  const adminToken = randomBytes(24).toString('hex');
  let handle: TestCluster | undefined;
  const control = new RemoteControl(() => {
    if (!handle) throw new Error('the test cluster is still starting');
    return handle;
  });
  const rt = new ClusterRuntime({ options, host, ca, adminToken, control: (method, args) => control.call(method, args) });
  await bootstrapObjects(rt.registry, namespace);
  await rt.registerNodes(options.nodes ?? DEFAULT_NODES);
  const port = await rt.apiserver.listen(tls, options.port ?? 0);
  await createKubernetesService(rt.registry, port);
  rt.controllers.start();
  await rt.controllers.idle();
  const server = `https://127.0.0.1:${port}`;
  const kubeconfigPath = join(host.stateDir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigText({ server, caPem: ca.certPem, user: 'admin', token: adminToken, namespace }), {
    mode: 0o600,
  });
  handle = clusterHandle(rt, {
    kubeconfigPath,
    server,
    issuer: rt.auth.issuer.issuer,
    port,
    namespace,
    caPem: ca.certPem,
    caPath,
    stateDir: host.stateDir,
    ownDir: host.ownDir,
  });
  return handle;
}
