/**
 * Finding the cluster as kubectl does: the in-cluster service account when running in a pod,
 * else KUBECONFIG / ~/.kube/config with its current context and namespace.
 */
import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { UsageError } from '../errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterAccess {
  kc: KubeConfig;
  namespace: string;
  inCluster: boolean;
}

export function loadClusterAccess(env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const kc = new KubeConfig();
  const tokenFile = `${SERVICE_ACCOUNT_DIR}/token`;
  if (env['KUBERNETES_SERVICE_HOST'] && existsSync(tokenFile)) {
    kc.loadFromCluster();
    let namespace = 'default';
    try {
      namespace = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim() || 'default';
    } catch {
      /* default */
    }
    return { kc, namespace, inCluster: true };
  }
  const files = (env['KUBECONFIG'] ?? '').split(':').filter((f) => f !== '');
  const home = env['HOME'] ?? env['USERPROFILE'];
  if (files.length === 0 && home) files.push(`${home}/.kube/config`);
  if (!files.some((f) => existsSync(f))) {
    throw new UsageError(
      `no Kubernetes configuration: ${files.length > 0 ? `${files.join(', ')} not found; ` : ''}set KUBECONFIG or create ~/.kube/config (as for kubectl), or run the leader in a pod`,
    );
  }
  try {
    kc.loadFromDefault();
  } catch (e) {
    throw new UsageError(`cannot read the Kubernetes configuration: ${(e as Error).message}`);
  }
  const ctxName = kc.getCurrentContext();
  const ctx = kc.getContextObject(ctxName);
  const cluster = kc.getCurrentCluster();
  if (!ctx || !cluster || !cluster.server) {
    throw new UsageError(
      `no Kubernetes cluster configured: set KUBECONFIG or create ~/.kube/config with a current context (as for kubectl), or run the leader in a pod`,
    );
  }
  return { kc, namespace: ctx.namespace || 'default', inCluster: false };
}
