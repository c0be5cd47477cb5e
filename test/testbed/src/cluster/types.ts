/** The test cluster's public types: its options, node specs, the handle and its fault controls. */
import type { RequestFault } from './faults.js';
import type { ContainerImagesOption } from './images.js';
import type { ImageConfig } from './kubelet.js';
import type { OpenWatch } from './apiserver.js';

export type { OpenWatch } from './apiserver.js';

/** Object metadata as the cluster stores it (names, identity, labels; the rest as sent). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** A stored API object (a deep copy): typed metadata; spec, status and the rest as stored. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface NodeSpec {
  name: string;
  /** allocatable resources (Kubernetes quantities); defaults: cpu 4, memory 16Gi, ephemeral-storage 100Gi, pods 110 */
  cpu?: string;
  memory?: string;
  ephemeralStorage?: string;
  gpu?: string | number;
  pods?: string | number;
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
  /**
   * Longest wait before the Job controller syncs again a Job whose pod creates were refused
   * (quota, Pod Security): 1 s doubling up to this (Kubernetes: 60000 ms). Tests whose subject
   * is not that back-off opt in to a shorter cap.
   */
  jobApiBackoffMaxMs?: number;
  /** container restart and image-pull back-off base (Kubernetes: 10000 ms) */
  restartBackoffBaseMs?: number;
  /**
   * Watch bookmark period (default 60000 ms, as a real API server's watch cache; a bookmark also
   * comes 2 s before a watch's end). Tests that need bookmarks quickly opt in to a shorter one.
   */
  bookmarkIntervalMs?: number;
  /**
   * kube-apiserver's --min-request-timeout (default 1800 s): a watch without timeoutSeconds is
   * ended by the server after a random 1–2 times this.
   */
  minRequestTimeoutSeconds?: number;
  /**
   * Admission plugins that are off in a default kube-apiserver, turned on as with its
   * --enable-admission-plugins: `OwnerReferencesPermissionEnforcement` (setting
   * blockOwnerDeletion needs `update` on the owner's `finalizers`; see admission/ownerReferences.ts).
   */
  enableAdmissionPlugins?: 'OwnerReferencesPermissionEnforcement'[];
  /** number of watch events kept for resuming watches (default 20000); older versions answer 410 Gone */
  historySize?: number;
  /** run containers in private mount namespaces (needs root + unshare; default true) */
  mountNamespaces?: boolean;
  /** OOM-kill containers whose resident memory exceeds limits.memory (default true) */
  enforceMemoryLimits?: boolean;
  /**
   * How often the kubelet's eviction manager measures local ephemeral storage (containers'
   * writable layers and logs, emptyDir volumes) against `limits.ephemeral-storage` and emptyDir
   * `sizeLimit`, evicting a pod over a limit (Kubernetes: every 10 s; default 10000 ms; a few
   * hundred ms for tests that want the eviction soon; 0 turns the limits off).
   */
  evictionIntervalMs?: number;
  /**
   * How long the kubelet waits for a pod's volumes before it records the FailedMount event
   * 'Unable to attach or mount volumes: unmounted volumes=[…] …' (again after each such wait),
   * besides the volume's own error (Kubernetes: 2m3s; default 123000 ms).
   */
  mountTimeoutMs?: number;
  /**
   * Directories each container gets as fresh, empty, private directories instead of the host's,
   * as a container has its own root file system: default ["/root"] (so the host's ~/.aws, ~/.kube
   * do not leak into pods). Pass ["/root", "/tmp", "/var/tmp"] for private scratch space too; the
   * default keeps /tmp shared because tests use it as a side channel to their pods. Everything else
   * (binaries, this checkout) is the host's, read-write.
   */
  privateDirs?: string[];
  /**
   * Host directories a host-process container sees as they are, and may write: not hidden by a
   * volume mounted over a parent (an emptyDir at /tmp, with the checkout under /tmp) and not made
   * read-only by `readOnlyRootFilesystem` (the host's file system is its root here). A test's
   * checkout — the programs a host process runs — and its side channel to its pods, which a real
   * cluster would have in the image and a volume.
   */
  writableHostDirs?: string[];
}

export interface TestClusterFaults {
  /** Fails matching API requests with a real server's Status body (500, 429 + Retry-After, 409, 503, 504 ...). */
  failRequests(f: RequestFault): { remove: () => void; hits: () => number };
  clearRequestFaults(): void;
  /** Adds latency (ms) to matching requests. */
  delayRequests(d: { verb?: string; resource?: string; namespace?: string; name?: string; ms: number }): { remove: () => void };
  /**
   * Holds back the events of watch streams (optionally of one resource, e.g. "pods") by `ms`, in
   * order, bookmarks included: on a real cluster the streams of different resources are separate
   * connections and can lag one another, so a Job's event can arrive before its pod's.
   */
  delayWatchEvents(d: { resource?: string; ms: number }): { remove: () => void };
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
  /**
   * The next `times` pulls of the image fail transiently (ErrImagePull with the registry's error,
   * default a 503; then ImagePullBackOff for the back-off, 10 s doubling to 5 min with
   * `restartBackoffBaseMs`), and the one after succeeds, as a registry having a bad minute.
   */
  failImagePulls(image: string, times: number, detail?: string): void;
  /**
   * Jobs with these annotations never have their ending recorded: once a pod exists the Job
   * controller leaves the Job as it is (no Complete or Failed, no counts), in watch events and
   * lists alike, while the pod runs to its end — a completion lost for good.
   */
  loseJobEndings(annotations: Record<string, string>): void;
}

export interface TestCluster {
  /** kubeconfig file for the unrestricted admin user (context "test-cluster") */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /**
   * The service-account token issuer (`iss`), whose OpenID Connect discovery documents the API
   * server serves (`/.well-known/openid-configuration`, `/openid/v1/jwks`): the server's URL.
   */
  issuer: string;
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
  /**
   * A service-account token (signed JWT, as `kubectl create token`), subject to RBAC; for the API
   * server unless `audiences` name others (e.g. `['sts.amazonaws.com']`). Unlike the TokenRequest
   * API it takes any `expirationSeconds`, so a test can have a token that expires in a second.
   */
  createToken(namespace: string, serviceAccount: string, expirationSeconds?: number, audiences?: string[]): string;
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
  /** The open watches (optionally for one resource): the timeoutSeconds asked for, when the server ends each, bookmarks or not. */
  openWatches(resource?: string): OpenWatch[];
  /** PIDs of container processes still running. */
  runningPids(): number[];
  stop(): Promise<void>;
}
