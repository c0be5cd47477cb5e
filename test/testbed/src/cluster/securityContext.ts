/**
 * A container's security context as the kubelet and the container runtime apply it, as pure
 * functions of the pod, the container and the image's user:
 *
 * - the effective context (the container's fields over the pod's);
 * - runAsNonRoot, verified against the user the container would run as, with the kubelet's
 *   messages (`container has runAsNonRoot and image will run as root (pod: "p_ns(uid)",
 *   container: main)`, or a non-numeric image user that cannot be verified);
 * - the process's identity and privileges: uid, gid, supplementary groups (fsGroup and
 *   supplementalGroups), no_new_privs (`allowPrivilegeEscalation: false`), and the capability
 *   set — the runtime's default set, with `add` and `drop` (`ALL`) applied, all of them when
 *   `privileged` — used as the bounding set, and as the effective and permitted sets of a root
 *   process (a non-root process has none, as its setuid leaves it none);
 * - the programs that apply them: in image mode a short Perl program (perl-base is on every
 *   Debian system) that chroots into the container's root, then makes the same system calls as
 *   runc's init; for a host process, util-linux's setpriv.
 */
import type { Obj } from './store.js';

/** The capabilities containerd gives a container by default. */
export const DEFAULT_CAPABILITIES = [
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'NET_RAW',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
];
/** Linux capability numbers (linux/capability.h). */
const CAP_NUMBERS: Record<string, number> = Object.fromEntries(
  [
    'CHOWN',
    'DAC_OVERRIDE',
    'DAC_READ_SEARCH',
    'FOWNER',
    'FSETID',
    'KILL',
    'SETGID',
    'SETUID',
    'SETPCAP',
    'LINUX_IMMUTABLE',
    'NET_BIND_SERVICE',
    'NET_BROADCAST',
    'NET_ADMIN',
    'NET_RAW',
    'IPC_LOCK',
    'IPC_OWNER',
    'SYS_MODULE',
    'SYS_RAWIO',
    'SYS_CHROOT',
    'SYS_PTRACE',
    'SYS_PACCT',
    'SYS_ADMIN',
    'SYS_BOOT',
    'SYS_NICE',
    'SYS_RESOURCE',
    'SYS_TIME',
    'SYS_TTY_CONFIG',
    'MKNOD',
    'LEASE',
    'AUDIT_WRITE',
    'AUDIT_CONTROL',
    'SETFCAP',
    'MAC_OVERRIDE',
    'MAC_ADMIN',
    'SYSLOG',
    'WAKE_ALARM',
    'BLOCK_SUSPEND',
    'AUDIT_READ',
    'PERFMON',
    'BPF',
    'CHECKPOINT_RESTORE',
  ].map((n, i) => [n, i]),
);
const ALL_CAPABILITIES = Object.keys(CAP_NUMBERS);

/** The container's securityContext over the pod's (the pod-only fields from the pod). */
export function effectiveContext(pod: Obj, c: Obj): Obj {
  const ps = (pod.spec?.securityContext ?? {}) as Obj;
  const cs = (c.securityContext ?? {}) as Obj;
  const pick = (k: string): unknown => cs[k] ?? ps[k];
  return {
    runAsUser: pick('runAsUser'),
    runAsGroup: pick('runAsGroup'),
    runAsNonRoot: pick('runAsNonRoot'),
    fsGroup: ps.fsGroup,
    supplementalGroups: ps.supplementalGroups ?? [],
    readOnlyRootFilesystem: cs.readOnlyRootFilesystem === true,
    allowPrivilegeEscalation: cs.allowPrivilegeEscalation,
    privileged: cs.privileged === true,
    capabilities: cs.capabilities ?? {},
  };
}

/** `name_namespace(uid)`, as the kubelet names a pod in its messages. */
const podRef = (pod: Obj): string => `${String(pod.metadata.name)}_${String(pod.metadata.namespace)}(${String(pod.metadata.uid)})`;

/**
 * The kubelet's runAsNonRoot check, given the image's user (`User` of its config; a host
 * process runs as root): an error message (CreateContainerConfigError), or undefined.
 */
export function verifyRunAsNonRoot(pod: Obj, c: Obj, imageUser: string): string | undefined {
  const sc = effectiveContext(pod, c);
  if (sc.runAsNonRoot !== true) return undefined;
  const where = `(pod: "${podRef(pod)}", container: ${String(c.name)})`;
  if (sc.runAsUser !== undefined) return sc.runAsUser === 0 ? `container's runAsUser breaks non-root policy ${where}` : undefined;
  const user = imageUser.split(':')[0] ?? '';
  if (user === '' || /^\d+$/.test(user))
    return Number(user || 0) === 0 ? `container has runAsNonRoot and image will run as root ${where}` : undefined;
  return `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root ${where}`;
}

/** What the process runs with. */
export interface ProcessIdentity {
  uid: number;
  gid: number;
  groups: number[];
  noNewPrivs: boolean;
  /** capability names (without CAP_): the bounding set, and a root process's effective and permitted sets */
  capabilities: string[];
}

/** The identity of a container's process, its user and group resolved already (from runAsUser/runAsGroup or the image). */
export function processIdentity(pod: Obj, c: Obj, user: { uid: number; gid: number }): ProcessIdentity {
  const sc = effectiveContext(pod, c);
  const groups = [
    ...new Set([...(sc.fsGroup !== undefined ? [Number(sc.fsGroup)] : []), ...(sc.supplementalGroups as number[]).map(Number)]),
  ];
  return {
    uid: user.uid,
    gid: user.gid,
    groups,
    noNewPrivs: sc.allowPrivilegeEscalation === false && !sc.privileged,
    capabilities: capabilitySet(sc),
  };
}

function capabilitySet(sc: Obj): string[] {
  if (sc.privileged) return [...ALL_CAPABILITIES];
  const norm = (xs: unknown): string[] => ((xs ?? []) as string[]).map((x) => x.replace(/^CAP_/, ''));
  const drop = norm(sc.capabilities.drop);
  const add = norm(sc.capabilities.add).filter((x) => x === 'ALL' || CAP_NUMBERS[x] !== undefined);
  let set = drop.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((x) => !drop.includes(x));
  set = add.includes('ALL') ? [...ALL_CAPABILITIES] : [...new Set([...set, ...add])];
  return set.filter((x) => !drop.includes(x) || add.includes(x)).sort((a, b) => CAP_NUMBERS[a]! - CAP_NUMBERS[b]!);
}

/** System call numbers the Perl program needs, per architecture. */
const SYSCALLS: Record<string, { prctl: number; capset: number; setgroups: number; setresgid: number; setresuid: number }> = {
  x64: { prctl: 157, capset: 126, setgroups: 116, setresgid: 119, setresuid: 117 },
  arm64: { prctl: 167, capset: 91, setgroups: 159, setresgid: 149, setresuid: 147 },
};

/**
 * chroot and chdir; supplementary groups, gid; no_new_privs; the bounding set; uid (a non-root
 * uid leaves no capabilities); a root process's capability sets; then exec, argv[0] as given.
 */
const ENTER = String.raw`
my ($root, $wd, $uid, $gid, $groups, $nnp, $keep, $nr, $path, @argv) = @ARGV;
my ($prctl, $capset, $setgroups, $setresgid, $setresuid) = split /,/, $nr;
chroot($root) or die "chroot $root: $!\n";
chdir($wd) or die "chdir $wd: $!\n";
my @g = grep { length } split /,/, $groups;
my $list = pack("L*", @g, 0);
syscall($setgroups + 0, scalar(@g), $list) == 0 or die "setgroups: $!\n";
syscall($setresgid, $gid + 0, $gid + 0, $gid + 0) == 0 or die "setresgid: $!\n";
if ($nnp) { syscall($prctl + 0, 38, 1, 0, 0, 0) == 0 or die "no_new_privs: $!\n"; }
my %k = map { $_ => 1 } grep { length } split /,/, $keep;
for my $cap (0 .. 63) { next if $k{$cap}; last if syscall($prctl + 0, 24, $cap, 0, 0, 0) != 0; }
syscall($setresuid, $uid + 0, $uid + 0, $uid + 0) == 0 or die "setresuid: $!\n";
if ($uid == 0) {
  my ($lo, $hi) = (0, 0);
  for (keys %k) { if ($_ < 32) { $lo |= 1 << $_ } else { $hi |= 1 << ($_ - 32) } }
  my ($head, $data) = (pack("LL", 0x20080522, 0), pack("L6", $lo, $lo, 0, $hi, $hi, 0));
  syscall($capset + 0, $head, $data) == 0 or die "capset: $!\n";
}
exec { $path } @argv or die "exec $path: $!\n";
`;

/** The command line that enters an image root as the container's process: chroot, identity, then exec of `path` with `argv`. */
export function enterRootCommand(
  at: { perl: string; root: string; workingDir: string; id: ProcessIdentity },
  path: string,
  argv: string[],
): string[] {
  const nr = SYSCALLS[process.arch];
  if (!nr) throw new Error(`the test cluster's kubelet does not know the system call numbers of ${process.arch}`);
  const { id } = at;
  return [
    at.perl,
    '-e',
    ENTER,
    '--',
    at.root,
    at.workingDir,
    String(id.uid),
    String(id.gid),
    id.groups.join(','),
    id.noNewPrivs ? '1' : '0',
    id.capabilities.map((x) => CAP_NUMBERS[x]).join(','),
    [nr.prctl, nr.capset, nr.setgroups, nr.setresgid, nr.setresuid].join(','),
    path,
    ...argv,
  ];
}

/** setpriv's arguments for a host process that runs as a given identity. */
export function setprivArgs(id: ProcessIdentity): string[] {
  const caps = id.capabilities.map((x) => `+${x.toLowerCase()}`);
  return [
    `--reuid=${id.uid}`,
    `--regid=${id.gid}`,
    ...(id.groups.length ? [`--groups=${id.groups.join(',')}`] : ['--clear-groups']),
    ...(id.noNewPrivs ? ['--no-new-privs'] : []),
    `--bounding-set=${['-all', ...caps].join(',')}`,
    '--inh-caps=-all',
    '--',
  ];
}
