/** The TestCluster handle over a running cluster's parts: identity, fault controls, accounts, stop. */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { kubeconfigText } from './bootstrap.js';
import type { ClusterRuntime } from './runtime.js';
import type { Obj } from './store.js';
import type { KubeObject, TestCluster, TestClusterFaults } from './types.js';

/** What a started cluster is known by (the handle's plain fields). */
export type ClusterIdentity = Pick<
  TestCluster,
  'kubeconfigPath' | 'server' | 'issuer' | 'port' | 'namespace' | 'caPem' | 'caPath' | 'stateDir'
> & {
  /** remove the state directory on stop (it was made for this cluster) */
  ownDir: boolean;
};

function faultControls(rt: ClusterRuntime): TestClusterFaults {
  const { faults, apiserver, store, kubelets, controllers } = rt;
  return {
    failRequests: (f) => faults.failRequests(f),
    clearRequestFaults: () => faults.clearRequestFaults(),
    delayRequests: (d) => faults.delayRequests(d),
    delayWatchEvents: (d) => faults.delayWatchEvents(d),
    dropWatches: (resource) => apiserver.endWatches((r) => !resource || r === resource, false),
    expireWatches: (resource) => {
      // the revision moves on (as it does with writes to any resource), and every older one is
      // expired: a client that re-lists gets the new revision and can watch from it
      store.rv++;
      faults.expireBelow(store.rv);
      return apiserver.endWatches((r) => !resource || r === resource, true);
    },
    compact: () => {
      store.compact();
    },
    evictPod: (ns, name, opts = {}) =>
      rt.evict(ns, name, opts.reason ?? 'TerminationByKubelet', opts.message ?? 'The node was low on resource: memory. '),
    oomKill: async (ns, name, container) => {
      const pod = store.peek('pods', ns, name);
      if (!pod) throw new Error(`pod ${ns}/${name} not found`);
      if (!kubelets.oomKill(pod.metadata.uid, container))
        throw new Error(`pod ${ns}/${name} has no running container${container ? ` ${container}` : ''}`);
    },
    loseNode: (name) => rt.loseNode(name),
    delayScheduling: (ms) => {
      rt.schedulingDelayMs = ms;
      controllers.kick();
    },
    pauseScheduling: () => {
      rt.schedulingPaused = true;
    },
    resumeScheduling: () => {
      rt.schedulingPaused = false;
      controllers.kick();
    },
    markImageMissing: (image) => {
      rt.missingImages.add(image);
    },
    failImagePulls: (image, times, detail) => {
      rt.pullFaults.set(image, { remaining: times, ...(detail !== undefined ? { detail } : {}) });
    },
    loseJobEndings: (annotations) => {
      rt.lostEndings.push({ ...annotations });
    },
    unmarkImageMissing: (image) => {
      rt.missingImages.delete(image);
      kubelets.kick();
    },
  };
}

/** Writes a kubeconfig authenticating as the service account; returns its path. */
function writeServiceAccountKubeconfig(rt: ClusterRuntime, id: ClusterIdentity, ns: string, sa: string): string {
  const token = rt.auth.issueServiceAccountToken(ns, sa, { expirationSeconds: 86400 }).token;
  const p = join(id.stateDir, `kubeconfig-${ns}-${sa}-${randomUUID().slice(0, 8)}`);
  writeFileSync(
    p,
    kubeconfigText({ server: id.server, caPem: id.caPem, user: `system:serviceaccount:${ns}:${sa}`, token, namespace: ns }),
    { mode: 0o600 },
  );
  return p;
}

/** Writes the service account's token, ca.crt and namespace where a pod would see them. */
function writeInClusterMount(
  rt: ClusterRuntime,
  id: ClusterIdentity,
  ns: string,
  sa: string,
): { root: string; env: Record<string, string> } {
  const root = join(id.stateDir, 'incluster', randomUUID().slice(0, 8));
  const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'token'), rt.auth.issueServiceAccountToken(ns, sa).token);
  writeFileSync(join(dir, 'ca.crt'), id.caPem);
  writeFileSync(join(dir, 'namespace'), ns);
  return { root, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(id.port) } };
}

export function clusterHandle(rt: ClusterRuntime, id: ClusterIdentity): TestCluster {
  const { ownDir, ...identity } = id;
  let stopped = false;
  return {
    ...identity,
    faults: faultControls(rt),
    requestCounts: () => Object.fromEntries([...rt.apiserver.counts.entries()].sort()),
    resetRequestCounts: () => rt.apiserver.counts.clear(),
    createToken: (ns, sa, exp, audiences) =>
      rt.auth.issueServiceAccountToken(ns, sa, { ...(exp ? { expirationSeconds: exp } : {}), ...(audiences ? { audiences } : {}) }).token,
    kubeconfigFor: (ns, sa) => writeServiceAccountKubeconfig(rt, id, ns, sa),
    inClusterMount: (ns, sa) => writeInClusterMount(rt, id, ns, sa),
    hostPathDir: (node, path) => rt.kubelets.hostPathDir(node, path),
    addNode: (spec) => rt.addNode(spec),
    get: (resource, ns, name) => rt.store.get(resource, ns, name) as KubeObject | undefined,
    list: (resource, ns) => rt.store.list(resource, ns).map((o) => JSON.parse(JSON.stringify(o)) as Obj as KubeObject),
    runningPids: () => rt.kubelets.runningPids(),
    watchCount: (resource) => rt.apiserver.watchCount(resource),
    openWatches: (resource) => rt.apiserver.openWatches(resource),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await rt.stop();
      // mount namespaces are private: nothing is mounted on the host, so plain removal is safe
      if (ownDir) rmSync(id.stateDir, { recursive: true, force: true });
    },
  };
}
