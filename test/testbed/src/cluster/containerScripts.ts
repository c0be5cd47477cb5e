/**
 * How a container is started: the shell lines that set up its mounts (host-process mode: the
 * host's file system with volumes and private scratch directories; image mode: an overlay root
 * of the image with proc, dev, sys, the kubelet's files and the volumes), and the process that
 * runs them in the pod's namespaces with the command as PID 1 or under a signal-forwarding init.
 */
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { podNamespaceArgs } from './host.js';
import { resolveExe } from './hostProcesses.js';
import type { CommandLayout, ContainerRef, ContainerScript, Ctr, ImageRoot, PodRt } from './kubeletTypes.js';
import { RootView, hostsFile, instanceRootLines, shellQuote as q, type HostTools } from './rootfs.js';
import { enterRootCommand, processIdentity, setprivArgs } from './securityContext.js';
import type { Obj } from './store.js';

export interface ScriptDeps {
  tools: HostTools & { setpriv: string; sh: string; perl: string };
  stateDir: string;
  /** host directories replaced by an empty private directory in each container */
  privateDirs: string[];
  /** host directories a host-process container sees as they are and may write, whatever is mounted over their parents (a test's checkout) */
  writableHostDirs: string[];
  mountNamespaces: boolean;
}

export class ContainerScripts {
  constructor(private d: ScriptDeps) {}

  instanceDir(rt: PodRt, c: Obj, ctr: Ctr): string {
    return join(this.d.stateDir, 'pods', rt.uid, 'rootfs', `${String(c.name)}-${ctr.restartCount}`);
  }

  /**
   * Host-process mode: the host's file system with the volumes bind-mounted and private
   * scratch directories. Returns the script and the command it runs ("$@"), or undefined when
   * the executable is not on the host's PATH.
   */
  processScript(
    { rt, c, ctr }: ContainerRef,
    { mounts, wd, argv, pathVar, identity, readOnlyRoot }: CommandLayout,
  ): ContainerScript | undefined {
    const resolved = argv[0] ? resolveExe(argv[0], pathVar) : undefined;
    if (!resolved) return undefined;
    const lines: string[] = [];
    // A container starts from its image's file system, not the host's: it gets fresh, private,
    // empty copies of the writable scratch directories (per container instance, as a restarted
    // container gets a new one). Volume mounts below such a directory are mounted into its copy
    // first, and the copies go on last, recursively, so that no bind source (the state dir may
    // itself live under /tmp) is hidden before it is used.
    const under = (path: string, dir: string): boolean => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
    const priv = this.d.privateDirs.map((d) => {
      const src = join(this.instanceDir(rt, c, ctr), d);
      mkdirSync(src, { recursive: true });
      if (d === '/tmp' || d === '/var/tmp') chmodSync(src, 0o1777);
      return { dir: d, src };
    });
    const bind = (src: string, dst: string, ro: boolean): void => {
      let isFile = false;
      try {
        isFile = statSync(src).isFile();
      } catch {
        mkdirSync(src, { recursive: true });
      }
      if (isFile) lines.push(`[ -e ${q(dst)} ] || { mkdir -p ${q(dirname(dst))}; : > ${q(dst)}; }`);
      else lines.push(`mkdir -p ${q(dst)}`);
      lines.push(`mount --bind ${q(src)} ${q(dst)}`);
      if (ro) lines.push(`mount -o remount,bind,ro ${q(dst)}`);
    };
    // The host directories a container sees as they are (the test's checkout: the "image" of a
    // host process) are bind mounts of their own, so that a volume over a parent (an emptyDir at
    // /tmp) does not hide them and a read-only root leaves them writable.
    const own = this.d.writableHostDirs.map((d) => ({ src: d, dst: d, ro: false }));
    const all = [...mounts, ...own];
    // A volume mounted over a directory that holds bind sources (an emptyDir at /tmp, where the
    // state dir may live) is treated like a private copy: mounts below it go into its source
    // first, and it goes on last.
    const sources = [this.d.stateDir, ...all.map((m) => m.src), ...priv.map((x) => x.src)];
    const covering = all.filter((m) => sources.some((src) => src !== m.src && under(src, m.dst)));
    const layers = [...priv, ...covering.map((m) => ({ dir: m.dst, src: m.src, ro: m.ro }))];
    for (const m of all) {
      if (covering.includes(m)) continue;
      const p0 = layers.find((x) => under(m.dst, x.dir));
      bind(m.src, p0 ? join(p0.src, m.dst.slice(p0.dir.length)) : m.dst, m.ro);
    }
    // layers whose source lies under another layer's directory go first
    const hiddenLater = (a: { src: string }): number => (layers.some((x) => x.src !== a.src && under(a.src, x.dir)) ? 0 : 1);
    layers.sort((a, b) => hiddenLater(a) - hiddenLater(b));
    for (const x of layers) {
      lines.push(`mkdir -p ${q(x.dir)}`, `mount --rbind ${q(x.src)} ${q(x.dir)}`);
      if ('ro' in x && x.ro) lines.push(`mount -o remount,bind,ro ${q(x.dir)}`);
    }
    lines.push(`mkdir -p ${q(wd)} && cd ${q(wd)}`);
    // the container's root is the host's here: read-only in its mount namespace, its private directories too
    if (readOnlyRoot) for (const d of ['/', ...priv.map((x) => x.dir)]) lines.push(`mount -o remount,bind,ro ${q(d)}`);
    const as = identity ? [this.d.tools.setpriv, ...setprivArgs(identity)] : [];
    return { lines, command: [...as, resolved, ...argv.slice(1)] };
  }

  /**
   * Image mode: the instance's own writable layer over the image's root, the volumes inside
   * it, then chroot, working dir and user. Undefined when the executable is not in the image
   * (or its volumes) on the container's PATH; a message when the root cannot be assembled.
   */
  imageScript(
    { p, rt, c, ctr }: ContainerRef,
    root: ImageRoot,
    { mounts, wd, argv, pathVar, identity, readOnlyRoot }: CommandLayout,
  ): ContainerScript | string | undefined {
    for (const m of mounts) {
      try {
        statSync(m.src);
      } catch {
        mkdirSync(m.src, { recursive: true });
      }
    }
    const podDir = join(this.d.stateDir, 'pods', rt.uid);
    mkdirSync(podDir, { recursive: true });
    writeFileSync(join(podDir, 'etc-hosts'), hostsFile(p.metadata.name));
    writeFileSync(join(podDir, 'etc-hostname'), `${String(p.metadata.name)}\n`);
    const files = [
      { dst: '/etc/hosts', src: join(podDir, 'etc-hosts') },
      { dst: '/etc/hostname', src: join(podDir, 'etc-hostname') },
    ];
    if (existsSync('/etc/resolv.conf')) files.push({ dst: '/etc/resolv.conf', src: '/etc/resolv.conf' });
    const view = new RootView(root.dir);
    try {
      const dir = this.instanceDir(rt, c, ctr);
      const { lines, merged } = instanceRootLines(this.d.tools, { view, dir, files, mounts, workingDir: wd, readOnly: readOnlyRoot });
      const exe = argv[0] ? view.findExecutable(argv[0], pathVar, wd) : undefined;
      if (!exe) return undefined;
      const id = identity ?? processIdentity(p, c, root.user);
      return { lines, command: enterRootCommand({ perl: this.d.tools.perl, root: merged, workingDir: wd, id }, exe, argv), pid1: true };
    } catch (e) {
      return `failed to prepare the container's root file system: ${(e as Error).message}`;
    }
  }

  /** The process to spawn for a container script (see launch()). */
  spawnArgs(script: ContainerScript): { cmd: string; args: string[] } {
    // as PID 1 of its namespace the shell would ignore SIGTERM without a handler: until the
    // command runs, a termination request ends the container (exit 143)
    const head = this.d.mountNamespaces ? ["trap 'exit 143' TERM", "trap 'exit 130' INT", 'set -e'] : ['set -e'];
    const lines = [...head, ...script.lines];
    const t = this.d.tools;
    const namespaces = podNamespaceArgs(t.unshare, t.sh);
    if (script.pid1) {
      // As in a real container, the image's entrypoint is PID 1: it gets SIGTERM only if it
      // handles it (an init such as tini does), else it is SIGKILLed after the grace period.
      lines.push('set +e', 'exec "$@"');
      return { cmd: t.setpriv, args: [...namespaces, lines.join('\n'), 'sh', ...script.command] };
    }
    if (this.d.mountNamespaces) {
      // The pod's processes live in their own PID namespace: when it ends (pod killed, or this
      // process dying and taking the namespace's init with it) every process in it dies too.
      // The shell stays as PID 1 and forwards termination signals, as an init such as tini does,
      // so the command itself gets SIGTERM's default action.
      lines.push(
        'set +e',
        '"$@" &',
        'child=$!',
        "trap 'kill -TERM $child 2>/dev/null' TERM",
        "trap 'kill -INT $child 2>/dev/null' INT",
        "trap 'kill -HUP $child 2>/dev/null' HUP",
        'while :; do wait $child; rc=$?; kill -0 $child 2>/dev/null || break; done',
        'exit $rc',
      );
      return { cmd: t.setpriv, args: [...namespaces, lines.join('\n'), 'sh', ...script.command] };
    }
    lines.push('set +e', 'exec "$@"');
    return { cmd: t.sh, args: ['-c', lines.join('\n').replace(/^mount .*$/gm, ':'), 'sh', ...script.command] };
  }
}
