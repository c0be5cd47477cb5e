/**
 * The image manager's side of a container start: an image reference's grammar, pulls that fail
 * (a missing image, injected transient faults) with ErrImagePull and the pull back-off
 * (ImagePullBackOff), and the pod worker's retries while it lasts.
 */
import type { Ctr, EventFn } from './kubeletTypes.js';

export interface PullOptions {
  missingImages: Set<string>;
  /** images whose next pulls fail transiently (faults.failImagePulls): failures left, and the registry's error */
  pullFaults: Map<string, { remaining: number; detail?: string }>;
  /** pull back-off base (Kubernetes: 10 s doubling to 5 min) */
  restartBackoffBaseMs: number;
}

export class ImagePulls {
  constructor(
    private o: PullOptions,
    private kick: () => void,
  ) {}

  /**
   * The image manager before a pull: during the pull back-off the container waits in
   * ImagePullBackOff; past it, a pull of an image that is missing (or has transient failures
   * left) fails with ErrImagePull. True when the container cannot start now.
   */
  blocked(ctr: Ctr, image: string, ev: EventFn): boolean {
    if (ctr.pullBackoffUntil && Date.now() < ctr.pullBackoffUntil) {
      ctr.state = { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` } };
      ev('Normal', 'BackOff', `Back-off pulling image "${image}"`);
      ev('Warning', 'Failed', 'Error: ImagePullBackOff');
      this.retryAt(ctr, ctr.pullBackoffUntil);
      return true;
    }
    if (this.o.missingImages.has(image)) {
      this.failed(ctr, image, ev);
      return true;
    }
    const fault = this.o.pullFaults.get(image);
    if (fault && fault.remaining > 0) {
      fault.remaining--;
      this.failed(ctr, image, ev, fault.detail ?? transientPullError(image));
      return true;
    }
    if (ctr.pullAttempts > 0 && ctr.pullBackoffUntil) {
      ctr.pullBackoffUntil = undefined;
      ev('Normal', 'Pulling', `Pulling image "${image}"`);
      ev('Normal', 'Pulled', `Successfully pulled image "${image}" in 1.2s (1.2s including waiting). Image size: 0 bytes.`);
    }
    return false;
  }

  /** A failed pull: ErrImagePull with the registry's error, and a back-off (10 s doubling to 5 min) before the next pull. */
  failed(ctr: Ctr, image: string, ev: EventFn, detail?: string): void {
    ctr.pullAttempts++;
    const backoff = Math.min(this.o.restartBackoffBaseMs * 2 ** (ctr.pullAttempts - 1), 300_000);
    ctr.pullBackoffUntil = Date.now() + backoff;
    const msg = detail
      ? `Failed to pull image "${image}": ${detail}`
      : `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": not found`;
    ctr.state = { waiting: { reason: 'ErrImagePull', message: msg } };
    ev('Normal', 'Pulling', `Pulling image "${image}"`);
    ev('Warning', 'Failed', msg);
    ev('Warning', 'Failed', 'Error: ErrImagePull');
    this.retryAt(ctr, ctr.pullBackoffUntil);
  }

  /** The pod worker's next sync of a waiting container: within a second (to report the back-off), and when it ends. */
  retryAt(ctr: Ctr, until: number): void {
    const now = Date.now();
    ctr.nextStart = until > now ? Math.min(now + Math.ceil((until - now) / 2), now + 1000) : now;
    setTimeout(() => this.kick(), ctr.nextStart - now + 5).unref?.();
    if (until > ctr.nextStart) setTimeout(() => this.kick(), until - now + 5).unref?.();
  }
}

/** A registry's transient error as containerd reports it (a 503 from the registry). */
function transientPullError(image: string): string {
  return `rpc error: code = Unknown desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": unexpected status from HEAD request to https://registry.example/v2/manifests/latest: 503 Service Unavailable`;
}

/** The grammar of a docker image reference (domain/path:tag@digest), lower-case repository. */
export function validImageReference(ref: string): boolean {
  const m =
    /^((?:[a-zA-Z0-9.-]+(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::([\w][\w.-]{0,127}))?(?:@sha256:[a-f0-9]{64})?$/.exec(
      ref,
    );
  return !!m;
}
