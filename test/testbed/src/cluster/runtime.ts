/**
 * The parts of a running cluster wired together: store, registry, service-account issuer and
 * authenticator, request faults, event recorder, API server, kubelets and controllers; the nodes
 * the kubelets register; and the evictions that both the Eviction API and `faults.evictPod` go
 * through.
 */
import { ApiServer } from './apiserver.js';
import { Authenticator } from './auth.js';
import { nodeObject } from './bootstrap.js';
import type { Cert } from './certs.js';
import { Controllers } from './controllers.js';
import { setCondition } from './objects.js';
import { Recorder } from './events.js';
import { Faults } from './faults.js';
import type { HostSetup } from './host.js';
import { Kubelets, type KubeletOptions } from './kubelet.js';
import { Registry, info, now } from './registry.js';
import { ServiceAccountIssuer } from './serviceAccountIssuer.js';
import { Store } from './store.js';
import type { NodeSpec, TestClusterOptions } from './types.js';
import { DEFAULT_BOOKMARK_INTERVAL_MS, DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS } from './watchTiming.js';

export interface RuntimeInit {
  options: TestClusterOptions;
  host: HostSetup;
  /** the cluster's CA: goes into every kube-root-ca.crt */
  ca: Cert;
  adminToken: string;
  /** serves POST /_testcluster/call (startTestClusterProcess) */
  control: (method: string, args: unknown[]) => Promise<unknown>;
}

const POD = info('', 'pods');
const NODE = info('', 'nodes');

function kubeletOptions(
  options: TestClusterOptions,
  host: HostSetup,
  apiPort: () => number,
  pulls: Pick<KubeletOptions, 'missingImages' | 'pullFaults'>,
): KubeletOptions {
  return {
    stateDir: host.stateDir,
    logDir: host.logDir,
    apiPort,
    images: options.images ?? {},
    ...pulls,
    restartBackoffBaseMs: options.restartBackoffBaseMs ?? 10_000,
    mountNamespaces: host.mountNamespaces,
    enforceMemoryLimits: options.enforceMemoryLimits ?? true,
    evictionIntervalMs: options.evictionIntervalMs ?? 10_000,
    mountTimeoutMs: options.mountTimeoutMs ?? 123_000,
    privateDirs: host.mountNamespaces ? (options.privateDirs ?? ['/root']) : [],
    writableHostDirs: options.writableHostDirs ?? [],
    ...(options.containerImages ? { containerImages: options.containerImages } : {}),
  };
}

export class ClusterRuntime {
  readonly store: Store;
  readonly registry: Registry;
  readonly auth: Authenticator;
  readonly faults = new Faults();
  readonly recorder: Recorder;
  readonly apiserver: ApiServer;
  readonly kubelets: Kubelets;
  readonly controllers: Controllers;
  /** images whose pulls fail (faults.markImageMissing) */
  readonly missingImages = new Set<string>();
  /** images whose next pulls fail transiently (faults.failImagePulls) */
  readonly pullFaults = new Map<string, { remaining: number; detail?: string }>();
  schedulingDelayMs = 0;
  schedulingPaused = false;
  /** Jobs whose ending the Job controller never records (faults.loseJobEndings), by annotations */
  readonly lostEndings: Array<Record<string, string>> = [];
  private readonly nodeSpecs = new Map<string, NodeSpec>();
  private registration: NodeJS.Timeout | undefined;

  constructor(init: RuntimeInit) {
    const { options, host } = init;
    this.store = new Store(options.historySize ?? 20000);
    this.registry = new Registry(this.store);
    const issuer = new ServiceAccountIssuer(() => `https://127.0.0.1:${this.apiserver.port}`);
    this.auth = new Authenticator(this.store, issuer, init.adminToken);
    this.recorder = new Recorder(this.store, () => this.registry.onChange());
    this.apiserver = new ApiServer({
      registry: this.registry,
      auth: this.auth,
      faults: this.faults,
      logDir: host.logDir,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? DEFAULT_BOOKMARK_INTERVAL_MS,
      minRequestTimeoutSeconds: options.minRequestTimeoutSeconds ?? DEFAULT_MIN_REQUEST_TIMEOUT_SECONDS,
      ownerReferencesPermissionEnforcement: (options.enableAdmissionPlugins ?? []).includes('OwnerReferencesPermissionEnforcement'),
      control: init.control,
      evict: (pod) => this.evict(pod.metadata.namespace, pod.metadata.name, 'EvictionByEvictionAPI', 'Eviction API: evicting'),
    });
    this.kubelets = new Kubelets(
      this.registry,
      this.recorder,
      this.auth,
      kubeletOptions(options, host, () => this.apiserver.port, { missingImages: this.missingImages, pullFaults: this.pullFaults }),
    );
    this.controllers = new Controllers(this.registry, this.recorder, {
      caPem: init.ca.certPem,
      jobBackoffBaseMs: options.jobBackoffBaseMs ?? 10_000,
      jobApiBackoffMaxMs: options.jobApiBackoffMaxMs ?? 60_000,
      schedulingDelayMs: () => this.schedulingDelayMs,
      schedulingPaused: () => this.schedulingPaused,
      endingLost: (job) => this.lostEndings.some((m) => Object.entries(m).every(([k, v]) => job.metadata.annotations?.[k] === v)),
    });
    this.registry.onChange = () => {
      this.controllers.kick();
      this.kubelets.kick();
    };
  }

  /**
   * Marks the pod DisruptionTarget; `TerminationByKubelet` kills its containers and keeps it
   * (status.reason Evicted), any other reason deletes it.
   */
  async evict(ns: string, name: string, reason: string, message: string): Promise<void> {
    const pod = this.store.get('pods', ns, name);
    if (!pod) throw new Error(`pod ${ns}/${name} not found`);
    pod.status = {
      ...(pod.status ?? {}),
      conditions: setCondition(pod.status?.conditions, {
        type: 'DisruptionTarget',
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: now(),
        reason,
        message,
      }),
    };
    this.store.update('pods', pod);
    if (reason === 'TerminationByKubelet') {
      this.kubelets.evict(pod.metadata.uid, reason, message);
      this.recorder.record(
        { ...pod, kind: 'Pod', apiVersion: 'v1' },
        { type: 'Warning', reason: 'Evicted', message, component: 'kubelet', host: pod.spec.nodeName },
      );
    } else {
      this.registry.delete(POD, ns, name, {});
    }
    this.registry.onChange();
  }

  /** Each kubelet registers its Node, and registers it again if someone deletes it, as a live kubelet does. */
  async registerNodes(specs: NodeSpec[]): Promise<void> {
    for (const n of specs) {
      this.nodeSpecs.set(n.name, n);
      await this.registry.create(NODE, undefined, nodeObject(n));
    }
    this.registration = setInterval(() => {
      for (const [name, spec] of this.nodeSpecs) {
        if (!this.controllers.nodesGone.has(name) && !this.store.peek('nodes', undefined, name)) {
          void this.registry.create(NODE, undefined, nodeObject(spec)).catch(() => undefined);
        }
      }
    }, 1000);
    this.registration.unref?.();
  }

  async addNode(spec: NodeSpec): Promise<void> {
    this.nodeSpecs.set(spec.name, spec);
    this.kubelets.nodeAdded(spec.name);
    this.controllers.nodesGone.delete(spec.name);
    await this.registry.create(NODE, undefined, nodeObject(spec));
  }

  /** The machine is gone: its processes die, the cloud controller deletes the Node, PodGC fails its pods. */
  async loseNode(name: string): Promise<void> {
    this.kubelets.loseNode(name);
    this.controllers.nodesGone.add(name);
    if (this.store.peek('nodes', undefined, name)) this.store.remove('nodes', undefined, name);
    this.registry.onChange();
    await this.controllers.idle();
  }

  async stop(): Promise<void> {
    clearInterval(this.registration);
    this.controllers.stop();
    await this.kubelets.stop();
    await this.apiserver.close();
  }
}
