/**
 * Finding the cluster as kubectl does: the in-cluster service account when running in a pod,
 * else KUBECONFIG / ~/.kube/config with its current context and namespace. And finding
 * credentials for one given API server (where a dead leader ran, for `toil clean`): the
 * in-cluster account when it is that server, else the kubeconfig context whose cluster is that
 * server — by URL, else by the cluster's CA certificate (a leader in a pod knows its cluster by
 * an in-cluster address that users outside reach under another name, with the same CA).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { KubeConfig, type Cluster } from '@kubernetes/client-node';
import { UsageError } from '../errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ClusterAccess {
  kc: KubeConfig;
  namespace: string;
  inCluster: boolean;
}

/** The in-cluster service account, when running in a pod. */
function inClusterAccess(env: NodeJS.ProcessEnv): ClusterAccess | undefined {
  if (!env['KUBERNETES_SERVICE_HOST'] || !existsSync(`${SERVICE_ACCOUNT_DIR}/token`)) return undefined;
  const kc = new KubeConfig();
  kc.loadFromCluster();
  let namespace = 'default';
  try {
    namespace = readFileSync(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8').trim() || 'default';
  } catch {
    /* default */
  }
  return { kc, namespace, inCluster: true };
}

/** The kubeconfig files kubectl would read: KUBECONFIG, else ~/.kube/config. */
function kubeconfigFiles(env: NodeJS.ProcessEnv): string[] {
  const files = (env['KUBECONFIG'] ?? '').split(':').filter((f) => f !== '');
  const home = env['HOME'] ?? env['USERPROFILE'];
  if (files.length === 0 && home) files.push(`${home}/.kube/config`);
  return files;
}

/** Each kubeconfig file there is, loaded on its own. */
function loadKubeconfigs(files: string[]): KubeConfig[] {
  return files
    .filter((f) => existsSync(f))
    .map((f) => {
      const kc = new KubeConfig();
      try {
        kc.loadFromFile(f);
      } catch (e) {
        throw new UsageError(`cannot read the Kubernetes configuration ${f}: ${(e as Error).message}`);
      }
      return kc;
    });
}

/** The context of `kc` (its current one first) whose cluster is the server `want`, if any. */
function contextFor(kc: KubeConfig, want: ServerIdentity, by: 'url' | 'ca'): string | undefined {
  const current = kc.getCurrentContext();
  const contexts = [...kc.getContexts()].sort((a, b) => Number(b.name === current) - Number(a.name === current));
  return contexts.find((ctx) => {
    const cluster = kc.getCluster(ctx.cluster);
    return cluster !== null && sameServer(clusterIdentity(cluster), want, by);
  })?.name;
}

export function loadClusterAccess(env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const inCluster = inClusterAccess(env);
  if (inCluster) return inCluster;
  const kc = new KubeConfig();
  const files = kubeconfigFiles(env);
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

/** An API server as a record names it: its URL and, when known, its CA certificate's fingerprint. */
export interface ServerIdentity {
  server: string;
  caSha256?: string | undefined;
}

function normalServer(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return url.replace(/\/+$/, '');
  }
}

/** SHA-256 of the first certificate's DER bytes in a PEM text. */
function pemFingerprint(pem: string): string | undefined {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem)?.[1];
  return body
    ? createHash('sha256')
        .update(Buffer.from(body.replace(/\s+/g, ''), 'base64'))
        .digest('hex')
    : undefined;
}

function clusterIdentity(cluster: Cluster): ServerIdentity {
  let pem: string | undefined;
  try {
    pem = cluster.caData
      ? Buffer.from(cluster.caData, 'base64').toString('utf8')
      : cluster.caFile
        ? readFileSync(cluster.caFile, 'utf8')
        : undefined;
  } catch {
    pem = undefined;
  }
  const caSha256 = pem ? pemFingerprint(pem) : undefined;
  return { server: cluster.server, ...(caSha256 ? { caSha256 } : {}) };
}

/** The identity of the API server a configuration talks to. */
export function serverIdentity(access: ClusterAccess): ServerIdentity {
  const cluster = access.kc.getCurrentCluster();
  return cluster ? clusterIdentity(cluster) : { server: '(unknown)' };
}

function sameServer(a: ServerIdentity, b: ServerIdentity, by: 'url' | 'ca'): boolean {
  if (by === 'url') return normalServer(a.server) === normalServer(b.server);
  return a.caSha256 !== undefined && a.caSha256 === b.caSha256;
}

/**
 * Credentials for the API server `want`, used in `namespace`: the in-cluster account when it is
 * that server, else the kubeconfig context (the current one first) whose cluster is, by URL and
 * then by CA. A UsageError naming the server when nothing here reaches it.
 */
export function accessForServer(want: ServerIdentity, namespace: string, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  const inCluster = inClusterAccess(env);
  for (const by of ['url', 'ca'] as const) {
    if (inCluster && sameServer(serverIdentity(inCluster), want, by)) return { ...inCluster, namespace };
  }
  const files = kubeconfigFiles(env);
  const configs = loadKubeconfigs(files);
  for (const by of ['url', 'ca'] as const) {
    for (const kc of configs) {
      const name = contextFor(kc, want, by);
      if (name === undefined) continue;
      kc.setCurrentContext(name);
      return { kc, namespace, inCluster: false };
    }
  }
  const where = inCluster ? 'the in-cluster service account' : `${files.join(', ')}`;
  throw new UsageError(
    `no credentials here reach the Kubernetes API at ${want.server} (looked in ${where}): add a context for that server to your kubeconfig (as for kubectl), or run this in that cluster`,
  );
}
