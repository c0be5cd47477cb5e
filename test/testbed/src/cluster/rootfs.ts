/**
 * A container's view of an image root file system, judged from the host: paths resolved with
 * the container's symlink semantics (an absolute link points into the root, not the host) and
 * its volume mounts, executables found on the container's PATH, users and groups from the
 * image's /etc/passwd and /etc/group, and the shell lines that assemble the root of one
 * container instance (overlay writable layer, /proc, /dev, /sys, /etc/hosts, volumes).
 */
import { lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { posix } from 'node:path';

export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** A host directory or file mounted at a container path. */
export interface Mount {
  src: string;
  dst: string;
  ro: boolean;
}

const MAX_SYMLINKS = 40;

/** The file system as a process chrooted into `root` with `mounts` applied sees it. */
export class RootView {
  private mounts: { dst: string; src: string }[] = [];

  constructor(readonly root: string) {}

  /** Adds a mount at a container path that is already resolved (see resolve()). */
  addMount(dst: string, src: string): void {
    this.mounts.push({ dst, src });
  }

  /** Host path of a resolved container path: the deepest mount covering it, else the root. */
  hostPath(path: string): string {
    let best: { dst: string; src: string } | undefined;
    for (const m of this.mounts) {
      const covers = path === m.dst || path.startsWith(m.dst === '/' ? '/' : `${m.dst}/`);
      if (covers && (!best || m.dst.length >= best.dst.length)) best = m;
    }
    return best ? posix.join(best.src, path.slice(best.dst.length)) : posix.join(this.root, path);
  }

  /**
   * Resolves symlinks in an absolute container path; components that do not exist are kept as
   * they are (the caller may create them). Throws on a symlink loop.
   */
  resolve(path: string): string {
    const todo = path.split('/').filter((x) => x && x !== '.');
    let cur = '/';
    let links = 0;
    while (todo.length) {
      const part = todo.shift()!;
      if (part === '..') {
        cur = posix.dirname(cur);
        continue;
      }
      const next = posix.join(cur, part);
      const target = readLink(this.hostPath(next));
      if (target === undefined) {
        cur = next;
        continue;
      }
      if (++links > MAX_SYMLINKS) throw new Error(`too many levels of symbolic links resolving ${path}`);
      todo.unshift(...target.split('/').filter((x) => x && x !== '.'));
      if (target.startsWith('/')) cur = '/';
    }
    return cur;
  }

  /** Reads a file of the container (undefined when it does not exist). */
  read(path: string): string | undefined {
    try {
      return readFileSync(this.hostPath(this.resolve(path)), 'utf8');
    } catch {
      return undefined;
    }
  }

  isFile(path: string): boolean {
    try {
      return statSync(this.hostPath(this.resolve(path))).isFile();
    } catch {
      return false;
    }
  }

  /** The executable `exe` would run as, looked up as execvp does inside the container. */
  findExecutable(exe: string, pathVar: string, workingDir: string): string | undefined {
    if (!exe) return undefined;
    if (exe.includes('/')) {
      const abs = posix.resolve(workingDir, exe);
      return this.isExecutable(abs) ? abs : undefined;
    }
    for (const dir of pathVar.split(':')) {
      if (!dir.startsWith('/')) continue;
      const candidate = posix.join(dir, exe);
      if (this.isExecutable(candidate)) return candidate;
    }
    return undefined;
  }

  private isExecutable(path: string): boolean {
    try {
      const st = statSync(this.hostPath(this.resolve(path)));
      return st.isFile() && (st.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  }
}

function readLink(hostPath: string): string | undefined {
  try {
    return lstatSync(hostPath).isSymbolicLink() ? readlinkSync(hostPath) : undefined;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------ users

export interface ContainerUser {
  uid: number;
  gid: number;
  home?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function passwd(view: RootView): PasswdEntry[] {
  return (view.read('/etc/passwd') ?? '').split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }];
  });
}

function groupId(view: RootView, group: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group);
  for (const line of (view.read('/etc/group') ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === group && /^\d+$/.test(f[2] ?? '')) return Number(f[2]);
  }
  return undefined;
}

/**
 * The user a container runs as, from an OCI `User` (`""`, `name`, `uid`, `uid:gid`,
 * `name:group` ...) looked up in the image's /etc/passwd and /etc/group as container runtimes
 * do: a numeric uid need not exist (its group is then 0 unless given). Returns an error
 * message for a name that is not there.
 */
export function lookupUser(view: RootView, spec: string): ContainerUser | string {
  const [userPart = '', groupPart] = spec.split(':', 2);
  const entries = passwd(view);
  const numeric = /^\d+$/.test(userPart);
  const entry =
    userPart === '' ? entries.find((e) => e.uid === 0) : entries.find((e) => (numeric ? e.uid === Number(userPart) : e.name === userPart));
  if (!entry && !numeric && userPart !== '') return `unable to find user ${userPart}: no matching entries in passwd file`;
  const uid = entry?.uid ?? (numeric ? Number(userPart) : 0);
  let gid = entry?.gid ?? 0;
  if (groupPart !== undefined && groupPart !== '') {
    const g = groupId(view, groupPart);
    if (g === undefined) return `unable to find group ${groupPart}: no matching entries in group file`;
    gid = g;
  }
  return { uid, gid, ...(entry ? { home: entry.home } : {}) };
}

/** The image's User with the pod's runAsUser / runAsGroup (container's over pod's) applied. */
export function effectiveUser(imageUser: string, sc: { runAsUser?: number; runAsGroup?: number }): string {
  const [user = '', group] = imageUser.split(':', 2);
  const u = sc.runAsUser !== undefined ? String(sc.runAsUser) : user;
  const g = sc.runAsGroup !== undefined ? String(sc.runAsGroup) : sc.runAsUser !== undefined ? undefined : group;
  return g !== undefined ? `${u}:${g}` : u;
}

// ----------------------------------------------------------------------------- mount script

/** Absolute paths of the host tools the mount script runs (the container's PATH is the image's). */
export interface HostTools {
  mount: string;
  mkdir: string;
  unshare: string;
}

export interface InstanceRoot {
  view: RootView;
  /** per container instance: upper/, work/ and merged/ live here */
  dir: string;
  /** host files bound over the image's (e.g. /etc/hosts → a kubelet-made file) */
  files: { dst: string; src: string }[];
  mounts: Mount[];
  workingDir: string;
  /** securityContext.readOnlyRootFilesystem: the root (not its volumes) mounted read-only */
  readOnly?: boolean;
}

/** Lines that bind-mount `src` at `dst` (a file or a directory), read-only when `ro`. */
function bindLines(tools: HostTools, bind: { src: string; dst: string; isFile: boolean; ro: boolean }): string[] {
  const { src, dst, isFile, ro } = bind;
  const lines = isFile
    ? [`[ -e ${shellQuote(dst)} ] || { ${tools.mkdir} -p ${shellQuote(posix.dirname(dst))}; : > ${shellQuote(dst)}; }`]
    : [`${tools.mkdir} -p ${shellQuote(dst)}`];
  lines.push(`${tools.mount} --bind ${shellQuote(src)} ${shellQuote(dst)}`);
  if (ro) lines.push(`${tools.mount} -o remount,bind,ro ${shellQuote(dst)}`);
  return lines;
}

function isHostFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Shell lines (run in the container's private mount namespace) that build the instance's root
 * at `<dir>/merged`: an overlay with the image root as its read-only lower layer, then proc,
 * dev, sys, the kubelet's files and the volumes (shallowest first, so deeper ones land inside
 * them). Destinations are resolved inside the root, so an image symlink such as
 * /var/run → /run is followed within the image, never to the host.
 */
export function instanceRootLines(tools: HostTools, r: InstanceRoot): { lines: string[]; merged: string } {
  const merged = posix.join(r.dir, 'merged');
  const at = (p: string): string => posix.join(merged, p);
  const m = (s: string): string => shellQuote(s);
  const lines = [
    `${tools.mkdir} -p ${m(`${r.dir}/upper`)} ${m(`${r.dir}/work`)} ${m(merged)}`,
    `${tools.mount} -t overlay overlay -o ${m(`lowerdir=${r.view.root},upperdir=${r.dir}/upper,workdir=${r.dir}/work`)} ${m(merged)}`,
    `${tools.mkdir} -p ${m(at('/proc'))} ${m(at('/dev'))} ${m(at('/sys'))}`,
    `${tools.mount} -t proc proc ${m(at('/proc'))}`,
    `${tools.mount} --rbind /dev ${m(at('/dev'))}`,
    `${tools.mount} --rbind /sys ${m(at('/sys'))}`,
    `${tools.mount} -o remount,bind,ro ${m(at('/sys'))}`,
  ];
  for (const f of r.files) lines.push(...bindLines(tools, { src: f.src, dst: at(r.view.resolve(f.dst)), isFile: true, ro: false }));
  const sorted = [...r.mounts].sort((a, b) => a.dst.split('/').length - b.dst.split('/').length);
  for (const v of sorted) {
    const dst = r.view.resolve(v.dst);
    lines.push(...bindLines(tools, { src: v.src, dst: at(dst), isFile: isHostFile(v.src), ro: v.ro }));
    r.view.addMount(dst, v.src);
  }
  lines.push(`${tools.mkdir} -p ${m(at(r.view.resolve(r.workingDir)))}`);
  if (r.readOnly) lines.push(`${tools.mount} -o remount,bind,ro ${m(merged)}`);
  return { lines, merged };
}

/** The kubelet-managed /etc/hosts of a pod (its IP is the host's loopback here). */
export function hostsFile(podName: string): string {
  return [
    '# Kubernetes-managed hosts file.',
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
    `127.0.0.1\t${podName}`,
    '',
  ].join('\n');
}
