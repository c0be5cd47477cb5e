/**
 * The image-root helpers without a cluster: symlinks resolved inside the root (never on the
 * host), executables on the container's PATH, users from the image's passwd/group files, the
 * runAsUser/runAsGroup override, and the buildah inspect output the kubelet depends on.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RootView, effectiveUser, lookupUser } from '../src/cluster/rootfs.js';
import { buildahGlobalArgs, parseInspect } from '../src/cluster/images.js';

let root: string;
let vol: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rootfs-test-'));
  vol = mkdtempSync(join(tmpdir(), 'rootfs-vol-'));
  for (const d of ['usr/bin', 'run', 'var', 'etc', 'data']) mkdirSync(join(root, d), { recursive: true });
  symlinkSync('usr/bin', join(root, 'bin'));
  symlinkSync('/run', join(root, 'var/run'));
  symlinkSync('../../../../etc', join(root, 'data/up'));
  symlinkSync('/loop-b', join(root, 'loop-a'));
  symlinkSync('/loop-a', join(root, 'loop-b'));
  writeFileSync(join(root, 'usr/bin/tool'), '#!/bin/sh\n');
  chmodSync(join(root, 'usr/bin/tool'), 0o755);
  writeFileSync(join(root, 'usr/bin/plain'), 'not executable');
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\nbroken line\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:\napp:x:1001:\n');
  writeFileSync(join(vol, 'script'), '#!/bin/sh\n');
  chmodSync(join(vol, 'script'), 0o755);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(vol, { recursive: true, force: true });
});

describe('RootView', () => {
  test('absolute and escaping relative symlinks stay inside the root', () => {
    const v = new RootView(root);
    expect(v.resolve('/var/run/secrets/x')).toBe('/run/secrets/x');
    expect(v.resolve('/data/up/passwd')).toBe('/etc/passwd');
    expect(v.resolve('/bin/../etc')).toBe('/usr/etc');
    expect(v.hostPath(v.resolve('/var/run'))).toBe(join(root, 'run'));
  });

  test('a symlink loop is an error, not a hang', () => {
    expect(() => new RootView(root).resolve('/loop-a/x')).toThrow('too many levels of symbolic links');
  });

  test('executables are found on the container PATH, through links and mounts, and must be executable', () => {
    const v = new RootView(root);
    expect(v.findExecutable('tool', '/sbin:/bin', '/')).toBe('/bin/tool');
    expect(v.findExecutable('plain', '/bin', '/')).toBeUndefined();
    expect(v.findExecutable('sh', '/bin', '/')).toBeUndefined(); // the host has one; the image does not
    expect(v.findExecutable('../bin/tool', '', '/data')).toBe('/bin/tool');
    expect(v.findExecutable('/opt/script', '/bin', '/')).toBeUndefined();
    v.addMount('/opt', vol);
    expect(v.findExecutable('/opt/script', '/bin', '/')).toBe('/opt/script');
  });
});

describe('users', () => {
  const v = (): RootView => new RootView(root);
  test('names and numbers are looked up in the image passwd and group files', () => {
    expect(lookupUser(v(), '')).toEqual({ uid: 0, gid: 0, home: '/root' });
    expect(lookupUser(v(), 'app')).toEqual({ uid: 1000, gid: 1001, home: '/home/app' });
    expect(lookupUser(v(), '1000')).toEqual({ uid: 1000, gid: 1001, home: '/home/app' });
    expect(lookupUser(v(), 'app:staff')).toEqual({ uid: 1000, gid: 50, home: '/home/app' });
    expect(lookupUser(v(), '4242:7')).toEqual({ uid: 4242, gid: 7 });
    expect(lookupUser(v(), '4242')).toEqual({ uid: 4242, gid: 0 });
  });

  test('an unknown name is an error naming it', () => {
    expect(lookupUser(v(), 'ghost')).toBe('unable to find user ghost: no matching entries in passwd file');
    expect(lookupUser(v(), 'app:nogroup')).toBe('unable to find group nogroup: no matching entries in group file');
  });

  test('runAsUser and runAsGroup override the image user', () => {
    expect(effectiveUser('app:staff', {})).toBe('app:staff');
    expect(effectiveUser('app:staff', { runAsUser: 5 })).toBe('5');
    expect(effectiveUser('app', { runAsGroup: 9 })).toBe('app:9');
    expect(effectiveUser('', { runAsUser: 5, runAsGroup: 9 })).toBe('5:9');
  });
});

describe('buildah', () => {
  const id = 'a'.repeat(64);
  test('the image config is read from buildah inspect output', () => {
    const out = JSON.stringify({
      FromImageID: id,
      OCIv1: { config: { Entrypoint: ['/bin/e'], Cmd: null, Env: ['PATH=/bin', 'A=b=c'], WorkingDir: '/w', User: 'app' } },
    });
    expect(parseInspect(out)).toEqual({ id, entrypoint: ['/bin/e'], env: { PATH: '/bin', A: 'b=c' }, workingDir: '/w', user: 'app' });
    expect(parseInspect(JSON.stringify({ FromImageID: id, OCIv1: {} }))).toEqual({ id, env: {}, user: '' });
  });

  test('unexpected inspect output is rejected, naming the field', () => {
    expect(() => parseInspect(JSON.stringify({ OCIv1: {} }))).toThrow(/FromImageID/);
    expect(() => parseInspect(JSON.stringify({ FromImageID: id, OCIv1: { config: { Cmd: 'echo' } } }))).toThrow(/Cmd/);
  });

  test('storage options become buildah global flags', () => {
    expect(buildahGlobalArgs(true)).toEqual([]);
    expect(buildahGlobalArgs({ storageDriver: 'vfs', root: '/r' })).toEqual(['--storage-driver', 'vfs', '--root', '/r']);
  });
});
