/** The kubelet's own records: containers and pods as it runs them, and how it plans a container. */
import type { ChildProcess } from 'node:child_process';
import type { WriteStream } from 'node:fs';
import type { LocalImage } from './images.js';
import type { ContainerUser, Mount } from './rootfs.js';
import type { ProcessIdentity } from './securityContext.js';
import type { Obj } from './store.js';

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workingDir?: string;
}

export type EventFn = (type: 'Normal' | 'Warning', reason: string, msg: string) => void;
export type ContainerSource =
  { kind: 'image'; image: LocalImage; root: string } | { kind: 'process'; config: ImageConfig } | { kind: 'missing'; message?: string };
/** An image's read-only root directory on the host and the user a container of it runs as. */
export interface ImageRoot {
  dir: string;
  user: ContainerUser;
}
/** How a container is created: its image config, the environment below the pod's, and (image mode) its root and user. */
export interface Plan {
  config: ImageConfig;
  baseEnv: Record<string, string>;
  root?: ImageRoot;
  /** who the process runs as (image mode always; a host process only when the pod asks for a user) */
  identity?: ProcessIdentity;
}
/**
 * Mount-script lines and the command line the script runs ("$@"): as a child of a
 * signal-forwarding init shell (host processes), or (`pid1`, image mode) by exec, so that the
 * image's entrypoint is PID 1 of the pod as in a real container.
 */
export interface ContainerScript {
  lines: string[];
  command: string[];
  pid1?: boolean;
}
/** One container of one pod: the pod object, its runtime record, the container's spec and state. */
export interface ContainerRef {
  p: Obj;
  rt: PodRt;
  c: Obj;
  ctr: Ctr;
}
/** What a container script sets up and runs: mounts, working dir, argv, and the PATH argv[0] is looked up on. */
export interface CommandLayout {
  mounts: Mount[];
  wd: string;
  argv: string[];
  pathVar: string;
  identity?: ProcessIdentity | undefined;
  /** securityContext.readOnlyRootFilesystem */
  readOnlyRoot: boolean;
}

export interface Ctr {
  name: string;
  init: boolean;
  proc?: ChildProcess;
  pid?: number;
  restartCount: number;
  state: Obj;
  lastState: Obj;
  startedAt?: string;
  oom?: boolean;
  killedBy?: string;
  nextStart?: number;
  /** failed pulls of the container's image so far (they set the pull back-off) */
  pullAttempts: number;
  /** until when pulls of its image are backing off (ImagePullBackOff) */
  pullBackoffUntil?: number;
  out?: WriteStream;
  containerID: string;
  memoryLimit?: number;
  /** the image's id (image mode), reported as the status's imageID */
  imageID?: string;
}
export interface PodRt {
  uid: string;
  ns: string;
  name: string;
  node: string;
  ctrs: Map<string, Ctr>;
  started: boolean;
  termSent?: number;
  killSent?: boolean;
  volumesReady: boolean;
  evicted?: { reason: string; message: string };
  initDone: boolean;
  /** the volume manager's retry back-off after a failed mount (500 ms doubling to 2m2s) */
  mountRetry?: { at: number; delayMs: number };
  /** since when the pod worker has waited for the pod's volumes (it gives up every mountTimeoutMs) */
  mountWaitSince?: number;
  gone?: boolean;
  startTime?: string;
}
