/**
 * A local Kubernetes test cluster: API server (HTTPS on 127.0.0.1, its own CA), job controller,
 * scheduler, garbage collector, kubelets that run pods as local processes in private mount
 * namespaces, RBAC for service-account tokens, and fault injection. See README.md.
 *
 *   const cluster = await startTestCluster({ nodes: [{ name: 'node-1', cpu: '4', memory: '8Gi' }] });
 *   // KUBECONFIG=cluster.kubeconfigPath kubectl get pods ... / new KubeConfig().loadFromFile(...)
 *   await cluster.stop();
 */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { createCA, issueCert } from './certs.js';
import { Store, type Obj } from './store.js';
import { Registry, info, now } from './registry.js';
import { Authenticator } from './auth.js';
import { ApiServer } from './apiserver.js';
import { Faults, type RequestFault } from './faults.js';
import { Recorder } from './events.js';
import { Controllers, setCondition } from './controllers.js';
import { Kubelets, type ImageConfig } from './kubelet.js';
import { requireBuildah, imageRootName, removeImageRoot, type ContainerImagesOption, type ContainerImagesOptions } from './images.js';

export type { RequestFault, ImageConfig, ContainerImagesOption, ContainerImagesOptions };
export { imageRootName, removeImageRoot };
export { startTestClusterProcess, type TestClusterProcess } from './process.js';
export type KubeObject = Obj;

export interface NodeSpec {
  name: string;
  /** allocatable resources (Kubernetes quantities); defaults: cpu 4, memory 16Gi, ephemeral-storage 100Gi, pods 110 */
  cpu?: string; memory?: string; ephemeralStorage?: string; gpu?: string | number; pods?: string | number;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
  unschedulable?: boolean;
}

export interface TestClusterOptions {
  /** simulated nodes (default: node-1 and node-2 with the default capacities) */
  nodes?: NodeSpec[];
  /** namespace written into the kubeconfig context (created if missing; default "default") */
  namespace?: string;
  /** where state (kubeconfig, logs, node hostPath roots, volumes) lives; default a fresh temp dir, removed on stop */
  stateDir?: string;
  /** fixed API port (default: an ephemeral port on 127.0.0.1) */
  port?: number;
  /** image metadata used when a container has no command/args (ENTRYPOINT/CMD/ENV/WORKDIR) */
  images?: Record<string, ImageConfig>;
  /**
   * Run containers from real images in buildah's local storage (no daemon): a container whose
   * image is there runs inside the image's root file system (own writable layer; entrypoint,
   * cmd, env, working dir and user from the image). An image neither there nor in `images` is
   * ErrImagePull / ImagePullBackOff. `true`: buildah's default storage; `{ storageDriver: 'vfs' }`
   * for images built with `buildah --storage-driver vfs`; `root`/`runRoot` as buildah's flags.
   * Needs buildah and mountNamespaces. Unset (default): every container is a host process.
   */
  containerImages?: ContainerImagesOption;
  /** Job pod re-creation back-off base (Kubernetes: 10000 ms) */
  jobBackoffBaseMs?: number;
  /** container restart and image-pull back-off base (Kubernetes: 10000 ms) */
  restartBackoffBaseMs?: number;
  /** watch bookmark interval (Kubernetes: ~60 s; default 1000 ms) */
  bookmarkIntervalMs?: number;
  /** number of watch events kept for resuming watches (default 20000); older versions answer 410 Gone */
  historySize?: number;
  /** run containers in private mount namespaces (needs root + unshare; default true) */
  mountNamespaces?: boolean;
  /** OOM-kill containers whose resident memory exceeds limits.memory (default true) */
  enforceMemoryLimits?: boolean;
  /**
   * Directories each container gets as fresh, empty, private directories instead of the host's,
   * as a container has its own root file system: default ["/root"] (so the host's ~/.aws, ~/.kube
   * do not leak into pods). Pass ["/root", "/tmp", "/var/tmp"] for private scratch space too; the
   * default keeps /tmp shared because tests use it as a side channel to their pods. Everything else
   * (binaries, this checkout) is the host's, read-write.
   */
  privateDirs?: string[];
}

export interface TestClusterFaults {
  /** Fails matching API requests with a real server's Status body (500, 429 + Retry-After, 409, 503, 504 ...). */
  failRequests(f: RequestFault): { remove: () => void; hits: () => number };
  clearRequestFaults(): void;
  /** Adds latency (ms) to matching requests. */
  delayRequests(d: { verb?: string; resource?: string; namespace?: string; name?: string; ms: number }): { remove: () => void };
  /** Ends open watches (optionally only for one resource, e.g. "pods") without an error: clients see the stream end. */
  dropWatches(resource?: string): number;
  /** Ends open watches with a 410 Expired ERROR event and compacts history so resuming from any older version gets 410. */
  expireWatches(resource?: string): number;
  /** Compacts the event history: watches from any current-or-older resourceVersion get 410 Gone. */
  compact(): void;
  /** Evicts a pod: DisruptionTarget condition, containers killed, pod Failed. reason TerminationByKubelet (default: node-pressure or spot termination, pod kept with status.reason Evicted), or EvictionByEvictionAPI / PreemptionByScheduler / DeletionByTaintManager (pod also deleted). */
  evictPod(namespace: string, name: string, opts?: { reason?: string; message?: string }): Promise<void>;
  /** Kills a pod's container(s) as the kernel OOM killer would: exit 137, reason OOMKilled. */
  oomKill(namespace: string, name: string, container?: string): Promise<void>;
  /** The node disappears (spot reclaim): its processes die, the Node is deleted, its pods get DisruptionTarget (DeletionByPodGC), turn Failed and are deleted. */
  loseNode(name: string): Promise<void>;
  /** Pods are not bound until they are at least `ms` old (0 to stop delaying). */
  delayScheduling(ms: number): void;
  pauseScheduling(): void;
  resumeScheduling(): void;
  /** Pods using this image get ErrImagePull / ImagePullBackOff until unmarked. */
  markImageMissing(image: string): void;
  unmarkImageMissing(image: string): void;
}

export interface TestCluster {
  /** kubeconfig file for the unrestricted admin user (context "test-cluster") */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  port: number;
  namespace: string;
  /** PEM of the cluster CA */
  caPem: string;
  caPath: string;
  stateDir: string;
  faults: TestClusterFaults;
  /** Requests served, by "<verb> <resource>[/<subresource>]" (e.g. "create jobs", "watch pods", "get pods/log"). */
  requestCounts(): Record<string, number>;
  resetRequestCounts(): void;
  /** A service-account token (signed JWT, as `kubectl create token`), subject to RBAC. */
  createToken(namespace: string, serviceAccount: string, expirationSeconds?: number): string;
  /** Writes a kubeconfig that authenticates as the service account; returns its path. */
  kubeconfigFor(namespace: string, serviceAccount: string): string;
  /**
   * Writes an in-cluster mount (token, ca.crt, namespace) for the service account under a new
   * directory and returns `{ root, env }`: `root + '/var/run/secrets/kubernetes.io/serviceaccount'`
   * holds the files (pass `root` as client-node's `loadFromCluster(root)` prefix) and `env` has
   * KUBERNETES_SERVICE_HOST/PORT.
   */
  inClusterMount(namespace: string, serviceAccount: string): { root: string; env: Record<string, string> };
  /** Host directory backing hostPath `path` on `node` (each node has its own root). */
  hostPathDir(node: string, path: string): string;
  /** Adds a node at runtime. */
  addNode(spec: NodeSpec): Promise<void>;
  /** Direct (unauthenticated, uncounted) read access to stored objects, for assertions. */
  get(resource: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(resource: string, namespace?: string): KubeObject[];
  /** Number of open watch streams (optionally for one resource, e.g. "pods"). */
  watchCount(resource?: string): number;
  /** PIDs of container processes still running. */
  runningPids(): number[];
  stop(): Promise<void>;
}

function nodeObject(n: NodeSpec): Obj {
  const alloc: Record<string, string> = {
    cpu: n.cpu ?? '4', memory: n.memory ?? '16Gi', 'ephemeral-storage': n.ephemeralStorage ?? '100Gi', pods: String(n.pods ?? 110),
    ...(n.gpu !== undefined ? { 'nvidia.com/gpu': String(n.gpu) } : {}),
  };
  const t = now();
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name: n.name,
      labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': 'amd64', ...(n.labels ?? {}) },
    },
    spec: { ...(n.taints?.length ? { taints: n.taints } : {}), ...(n.unschedulable ? { unschedulable: true } : {}) },
    status: {
      capacity: alloc, allocatable: alloc,
      conditions: [
        { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
        { type: 'DiskPressure', status: 'False', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
        { type: 'PIDPressure', status: 'False', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
        { type: 'Ready', status: 'True', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletReady', message: 'kubelet is posting ready status' },
      ],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }, { type: 'Hostname', address: n.name }],
      nodeInfo: { kubeletVersion: 'v1.32.0', kubeProxyVersion: 'v1.32.0', operatingSystem: 'linux', architecture: 'amd64', containerRuntimeVersion: 'local-process://1.0', osImage: 'toil-ts test cluster', kernelVersion: '', machineID: '', systemUUID: '', bootID: '' },
    },
  };
}

function kubeconfig(server: string, caPem: string, user: string, token: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'test-cluster', preferences: {},
    clusters: [{ name: 'test-cluster', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: user, user: { token } }],
    contexts: [{ name: 'test-cluster', context: { cluster: 'test-cluster', user, namespace } }],
  }, null, 2);
}

/** Starts a test cluster in this process. */
export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const ownDir = !options.stateDir;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'toil-ts-cluster-'));
  mkdirSync(stateDir, { recursive: true });
  const logDir = join(stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const namespace = options.namespace ?? 'default';
  let mountNamespaces = options.mountNamespaces ?? true;
  if (mountNamespaces) {
    const probe = spawnSync('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child=SIGKILL', '--mount-proc', '--', '/bin/sh', '-c', `mkdir -p ${stateDir}/probe && mount --bind ${stateDir} ${stateDir}/probe`], { stdio: 'ignore' });
    if (probe.status !== 0) throw new Error('test cluster: private mount and PID namespaces are not available (need root, setpriv and unshare --mount --pid); pass mountNamespaces: false to run without volume mounts');
  }
  if (options.containerImages) {
    if (!mountNamespaces) throw new Error('test cluster: containerImages needs mountNamespaces (each container gets its own root inside a private mount namespace)');
    requireBuildah();
  }

  const ca = createCA();
  const serving = issueCert(ca, 'kube-apiserver', { ips: ['127.0.0.1'], dns: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'], usages: ['server'] });
  const caPath = join(stateDir, 'ca.crt');
  writeFileSync(caPath, ca.certPem);
  const adminToken = randomBytes(24).toString('hex');

  const store = new Store(options.historySize ?? 20000);
  const registry = new Registry(store);
  const auth = new Authenticator(store, ca.key, adminToken);
  const faults = new Faults();
  const missingImages = new Set<string>();
  let schedDelay = 0; let schedPaused = false;
  // eslint-disable-next-line prefer-const
  let controllers: Controllers;
  // eslint-disable-next-line prefer-const
  let kubelets: Kubelets;
  const recorder = new Recorder(store, () => registry.onChange());
  const installed = new Map<number, { remove: () => void; hits: () => number }>();
  let nextFaultId = 1;
  const apiserver = new ApiServer({
    registry, auth, faults, logDir, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 1000,
    control: async (method, args) => {
      // remote control for clusters started with startTestClusterProcess()
      const a = args as unknown[];
      switch (method) {
        case 'faults.failRequests': { const h = faults.failRequests(a[0] as RequestFault); const id = nextFaultId++; installed.set(id, h); return id; }
        case 'faults.removeFault': installed.get(a[0] as number)?.remove(); return null;
        case 'faults.faultHits': return installed.get(a[0] as number)?.hits() ?? 0;
        case 'faults.delayRequests': { const h = faults.delayRequests(a[0] as never); const id = nextFaultId++; installed.set(id, { remove: h.remove, hits: () => 0 }); return id; }
        default: {
          const [scope, name] = method.includes('.') ? method.split('.') as [string, string] : ['', method];
          const target = (scope === 'faults' ? cluster.faults : cluster) as unknown as Record<string, unknown>;
          const fn = target[name];
          if (typeof fn !== 'function' || ['stop', 'failRequests', 'delayRequests'].includes(name)) throw new Error(`unknown control method ${method}`);
          return await (fn as (...x: unknown[]) => unknown).apply(target, a);
        }
      }
    },
    evict: async (pod) => {
      await evict(pod.metadata.namespace, pod.metadata.name, 'EvictionByEvictionAPI', 'Eviction API: evicting');
    },
  });
  kubelets = new Kubelets(registry, recorder, auth, {
    stateDir, logDir, apiPort: () => apiserver.port, images: options.images ?? {}, missingImages,
    restartBackoffBaseMs: options.restartBackoffBaseMs ?? 10_000, mountNamespaces, enforceMemoryLimits: options.enforceMemoryLimits ?? true,
    privateDirs: mountNamespaces ? (options.privateDirs ?? ['/root']) : [],
    ...(options.containerImages ? { containerImages: options.containerImages } : {}),
  });
  controllers = new Controllers(registry, recorder, {
    caPem: ca.certPem, jobBackoffBaseMs: options.jobBackoffBaseMs ?? 10_000,
    schedulingDelayMs: () => schedDelay, schedulingPaused: () => schedPaused,
  });
  registry.onChange = () => { controllers.kick(); kubelets.kick(); };

  const POD = info('', 'pods');
  async function evict(ns: string, name: string, reason: string, message: string): Promise<void> {
    const pod = store.get('pods', ns, name);
    if (!pod) throw new Error(`pod ${ns}/${name} not found`);
    pod.status = { ...(pod.status ?? {}), conditions: setCondition(pod.status?.conditions, { type: 'DisruptionTarget', status: 'True', lastProbeTime: null, lastTransitionTime: now(), reason, message }) };
    store.update('pods', pod);
    if (reason === 'TerminationByKubelet') {
      kubelets.evict(pod.metadata.uid, reason, message);
      recorder.record({ ...pod, kind: 'Pod', apiVersion: 'v1' }, 'Warning', 'Evicted', message, 'kubelet', pod.spec.nodeName);
    } else {
      registry.delete(POD, ns, name, {});
    }
    registry.onChange();
  }

  // bootstrap objects
  for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease', ...(namespace !== 'default' ? [namespace] : [])]) {
    await registry.create(info('', 'namespaces'), undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: n } });
  }
  await registry.create(info('rbac.authorization.k8s.io', 'clusterroles'), undefined, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'cluster-admin', labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } },
    rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }, { nonResourceURLs: ['*'], verbs: ['*'] }],
  });
  await registry.create(info('rbac.authorization.k8s.io', 'clusterrolebindings'), undefined, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'cluster-admin', labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' }],
  });
  for (const [name, verbs] of [['view', ['get', 'list', 'watch']], ['edit', ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']]] as const) {
    await registry.create(info('rbac.authorization.k8s.io', 'clusterroles'), undefined, {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name, labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults' } },
      rules: [
        { apiGroups: [''], resources: ['pods', 'pods/log', 'pods/status', 'configmaps', 'events', 'serviceaccounts', ...(name === 'edit' ? ['secrets'] : [])], verbs: [...verbs] },
        { apiGroups: ['batch'], resources: ['jobs', 'jobs/status'], verbs: [...verbs] },
      ],
    });
  }
  // each kubelet registers its Node (and registers it again if someone deletes it, as a live kubelet does)
  const nodeSpecs = new Map<string, NodeSpec>();
  for (const n of options.nodes ?? [{ name: 'node-1' }, { name: 'node-2' }]) {
    nodeSpecs.set(n.name, n);
    await registry.create(info('', 'nodes'), undefined, nodeObject(n));
  }
  const registration = setInterval(() => {
    for (const [name, spec] of nodeSpecs) {
      if (!controllers.nodesGone.has(name) && !store.peek('nodes', undefined, name)) {
        void registry.create(info('', 'nodes'), undefined, nodeObject(spec)).catch(() => undefined);
      }
    }
  }, 1000);
  registration.unref?.();
  const port = await apiserver.listen({ cert: serving.certPem, key: serving.keyPem }, options.port ?? 0);
  const server = `https://127.0.0.1:${port}`;
  // the "kubernetes" Service every cluster has (kubectl cluster-info looks for it)
  await registry.create(info('', 'services'), 'default', {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: port }], type: 'ClusterIP' },
  });
  controllers.start();
  await controllers.idle();

  const kubeconfigPath = join(stateDir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfig(server, ca.certPem, 'admin', adminToken, namespace), { mode: 0o600 });

  let stopped = false;
  const cluster: TestCluster = {
    kubeconfigPath, server, port, namespace, caPem: ca.certPem, caPath, stateDir,
    faults: {
      failRequests: (f) => faults.failRequests(f),
      clearRequestFaults: () => faults.clearRequestFaults(),
      delayRequests: (d) => faults.delayRequests(d),
      dropWatches: (resource) => apiserver.endWatches((r) => !resource || r === resource, false),
      expireWatches: (resource) => {
        // the revision moves on (as it does with writes to any resource), and every older one is
        // expired: a client that re-lists gets the new revision and can watch from it
        store.rv++;
        faults.expireBelow(store.rv);
        return apiserver.endWatches((r) => !resource || r === resource, true);
      },
      compact: () => { store.compact(); },
      evictPod: (ns, name, opts = {}) => evict(ns, name, opts.reason ?? 'TerminationByKubelet', opts.message ?? 'The node was low on resource: memory. ').then(() => undefined),
      oomKill: async (ns, name, container) => {
        const pod = store.peek('pods', ns, name);
        if (!pod) throw new Error(`pod ${ns}/${name} not found`);
        if (!kubelets.oomKill(pod.metadata.uid, container)) throw new Error(`pod ${ns}/${name} has no running container${container ? ` ${container}` : ''}`);
      },
      loseNode: async (name) => {
        // the machine is gone: its processes die, the cloud controller deletes the Node, PodGC fails its pods
        kubelets.loseNode(name);
        controllers.nodesGone.add(name);
        if (store.peek('nodes', undefined, name)) store.remove('nodes', undefined, name);
        registry.onChange();
        await controllers.idle();
      },
      delayScheduling: (ms) => { schedDelay = ms; controllers.kick(); },
      pauseScheduling: () => { schedPaused = true; },
      resumeScheduling: () => { schedPaused = false; controllers.kick(); },
      markImageMissing: (image) => { missingImages.add(image); },
      unmarkImageMissing: (image) => { missingImages.delete(image); kubelets.kick(); },
    },
    requestCounts: () => Object.fromEntries([...apiserver.counts.entries()].sort()),
    resetRequestCounts: () => apiserver.counts.clear(),
    createToken: (ns, sa, exp) => auth.issueServiceAccountToken(ns, sa, exp ? { expirationSeconds: exp } : {}).token,
    kubeconfigFor: (ns, sa) => {
      const token = auth.issueServiceAccountToken(ns, sa, { expirationSeconds: 86400 }).token;
      const p = join(stateDir, `kubeconfig-${ns}-${sa}-${randomUUID().slice(0, 8)}`);
      writeFileSync(p, kubeconfig(server, ca.certPem, `system:serviceaccount:${ns}:${sa}`, token, ns), { mode: 0o600 });
      return p;
    },
    inClusterMount: (ns, sa) => {
      const root = join(stateDir, 'incluster', randomUUID().slice(0, 8));
      const dir = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'token'), auth.issueServiceAccountToken(ns, sa).token);
      writeFileSync(join(dir, 'ca.crt'), ca.certPem);
      writeFileSync(join(dir, 'namespace'), ns);
      return { root, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port) } };
    },
    hostPathDir: (node, path) => kubelets.hostPathDir(node, path),
    addNode: async (spec) => {
      nodeSpecs.set(spec.name, spec);
      kubelets.nodeAdded(spec.name);
      controllers.nodesGone.delete(spec.name);
      await registry.create(info('', 'nodes'), undefined, nodeObject(spec));
    },
    get: (resource, ns, name) => store.get(resource, ns, name),
    list: (resource, ns) => store.list(resource, ns).map((o) => JSON.parse(JSON.stringify(o)) as Obj),
    runningPids: () => kubelets.runningPids(),
    watchCount: (resource) => apiserver.watchCount(resource),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(registration);
      controllers.stop();
      await kubelets.stop();
      await apiserver.close();
      if (ownDir) {
        // mount namespaces are private: nothing is mounted on the host, so plain removal is safe
        rmSync(stateDir, { recursive: true, force: true });
      }
    },
  };
  return cluster;
}
