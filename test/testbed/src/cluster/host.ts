/** The host side of a cluster: its state directory and what the machine must allow. */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBuildah } from './images.js';
import type { TestClusterOptions } from './types.js';

export interface HostSetup {
  stateDir: string;
  /** the state directory was made for this cluster (and is removed on stop) */
  ownDir: boolean;
  logDir: string;
  mountNamespaces: boolean;
}

/**
 * `setpriv` arguments that run `sh -c <script>` in a private mount and PID namespace which dies
 * with the process that started it: how every container process and the start-up probe run.
 */
export function podNamespaceArgs(unshare: string, sh: string): string[] {
  return [
    '--pdeathsig',
    'SIGKILL',
    '--',
    unshare,
    '--mount',
    '--propagation',
    'private',
    '--pid',
    '--fork',
    '--kill-child=SIGKILL',
    '--mount-proc',
    '--',
    sh,
    '-c',
  ];
}

/** Fails unless a private mount and PID namespace can be made and bind mounts work inside it. */
function probeNamespaces(stateDir: string): void {
  const script = `mkdir -p ${stateDir}/probe && mount --bind ${stateDir} ${stateDir}/probe`;
  const probe = spawnSync('setpriv', [...podNamespaceArgs('unshare', '/bin/sh'), script], { stdio: 'ignore' });
  if (probe.status !== 0)
    throw new Error(
      'test cluster: private mount and PID namespaces are not available (need root, setpriv and unshare --mount --pid); pass mountNamespaces: false to run without volume mounts',
    );
}

/** Makes the state and log directories and checks the host's namespaces and buildah as the options need. */
export function prepareHost(options: TestClusterOptions): HostSetup {
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'toil-ts-cluster-'));
  mkdirSync(stateDir, { recursive: true });
  const logDir = join(stateDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const mountNamespaces = options.mountNamespaces ?? true;
  if (mountNamespaces) probeNamespaces(stateDir);
  if (options.containerImages) {
    if (!mountNamespaces)
      throw new Error(
        'test cluster: containerImages needs mountNamespaces (each container gets its own root inside a private mount namespace)',
      );
    requireBuildah();
  }
  return { stateDir, ownDir: !options.stateDir, logDir, mountNamespaces };
}
