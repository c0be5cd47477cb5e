/**
 * The kubelet's image mode: a tiny busybox image is built with buildah (vfs storage, no
 * daemon) by the test itself and run as pods through the real client-node and kubectl:
 * entrypoint/cmd/args, env, working dir and user from the image, a writable layer per pod,
 * volumes inside the image's root, StartError, ErrImagePull and SIGTERM on deletion.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { startTestCluster, imageRootName, type TestCluster } from '../src/cluster/index.js';
import { clients, jobDone, kubectl, until } from '../src/cluster/testutil.js';

const STORAGE = ['--storage-driver', 'vfs'];
const tag = `toil-ts-imgtest-${randomBytes(4).toString('hex')}`;
const IMAGE = `${tag}:v1`;
/** the same image whose User ("ghost") is not in its /etc/passwd */
const GHOST = `${tag}-ghost:v1`;
const APPLETS = ['sh', 'id', 'cat', 'ls', 'sleep', 'env', 'pwd', 'touch', 'echo', 'mkdir', 'true', 'dd', 'setsid'];
const ns = 'default';
/** Image lookups wait for buildah's storage lock, which a concurrent `buildah bud` can hold for a while. */
const WAIT_MS = 120_000;
jest.setTimeout(3 * WAIT_MS);

let cluster: TestCluster | undefined;
let c: ReturnType<typeof clients>;
let imageId = '';
let ghostId = '';

function buildah(...args: string[]): string {
  return execFileSync('buildah', [...STORAGE, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function requireTools(): void {
  const hint = 'the image tests need buildah and a static busybox: apt-get install -y buildah busybox-static';
  if (spawnSync('buildah', ['--version'], { stdio: 'ignore' }).status !== 0) throw new Error(`buildah is not installed; ${hint}`);
  if (!existsSync('/bin/busybox')) throw new Error(`/bin/busybox is missing; ${hint}`);
  // a dynamically linked busybox (Debian's "busybox" package) cannot run in an image with no libc
  if (spawnSync('ldd', ['/bin/busybox'], { stdio: 'ignore' }).status === 0) throw new Error(`/bin/busybox is dynamically linked; ${hint}`);
}

/** FROM scratch + busybox, a user "app" (1234:2345), /var/run → /run (an absolute link), a file in /data. */
function buildImage(): void {
  const ctr = `${tag}-build`;
  buildah('from', '--name', ctr, 'scratch');
  try {
    const root = buildah('mount', ctr);
    for (const d of ['bin', 'etc', 'work', 'data', 'run', 'var', 'home/app', 'tmp']) mkdirSync(join(root, d), { recursive: true });
    chmodSync(join(root, 'tmp'), 0o1777);
    copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
    chmodSync(join(root, 'bin/busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    symlinkSync('/run', join(root, 'var/run'));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nappg:x:2345:\n');
    writeFileSync(join(root, 'data/image-file'), 'from image\n');
    buildah(
      'config',
      '--entrypoint',
      '["/bin/echo","entry"]',
      '--cmd',
      '["from-cmd"]',
      '--env',
      'PATH=/bin',
      '--env',
      'GREETING=hello-from-image',
      '--env',
      'OVERRIDE=image',
      '--workingdir',
      '/work',
      '--user',
      'app',
      ctr,
    );
    buildah('commit', '--quiet', ctr, IMAGE);
    buildah('config', '--user', 'ghost', ctr);
    buildah('commit', '--quiet', ctr, GHOST);
  } finally {
    spawnSync('buildah', [...STORAGE, 'rm', ctr], { stdio: 'ignore' });
  }
  imageId = buildah('inspect', '--type', 'image', '--format', '{{.FromImageID}}', IMAGE);
  ghostId = buildah('inspect', '--type', 'image', '--format', '{{.FromImageID}}', GHOST);
}

beforeAll(async () => {
  requireTools();
  buildImage();
  cluster = await startTestCluster({
    containerImages: { storageDriver: 'vfs' },
    restartBackoffBaseMs: 200,
    jobBackoffBaseMs: 100,
    images: { 'busybox:1.36': {} },
  });
  c = clients(cluster.kubeconfigPath);
}, 5 * 60_000); // buildah waits for its storage lock while a concurrent build holds it

afterAll(async () => {
  await cluster?.stop();
  expect(cluster?.runningPids() ?? []).toEqual([]);
  for (const id of [imageId, ghostId]) if (id) spawnSync('buildah', [...STORAGE, 'rm', imageRootName(id)], { stdio: 'ignore' });
  spawnSync('buildah', [...STORAGE, 'rmi', IMAGE, GHOST], { stdio: 'ignore' });
}, 60_000);

function pod(name: string, ctr: Partial<k8s.V1Container> = {}, spec: Partial<k8s.V1PodSpec> = {}): k8s.V1Pod {
  return { metadata: { name }, spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: IMAGE, ...ctr }], ...spec } };
}
async function run(body: k8s.V1Pod): Promise<k8s.V1Pod> {
  await c.core.createNamespacedPod({ namespace: ns, body });
  return podDone(body.metadata!.name!);
}
async function podDone(name: string): Promise<k8s.V1Pod> {
  return until(
    `pod ${name} to finish`,
    async () => {
      const p = await c.core.readNamespacedPod({ namespace: ns, name });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
    },
    WAIT_MS,
  );
}
async function logOf(name: string): Promise<string> {
  return c.core.readNamespacedPodLog({ namespace: ns, name });
}
async function waitingReason(name: string, reason: string): Promise<k8s.V1ContainerStateWaiting> {
  return until(
    `pod ${name} waiting with ${reason}`,
    async () => {
      const p = await c.core.readNamespacedPod({ namespace: ns, name });
      const w = p.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === reason ? w : undefined;
    },
    WAIT_MS,
  );
}
async function eventsOf(name: string): Promise<string[]> {
  const list = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`);
}

describe('containers run inside their image', () => {
  test('the image entrypoint runs with its cmd; args (kubectl run -- ...) replace the cmd', async () => {
    const p = await run(pod('img-cmd'));
    expect(p.status?.phase).toBe('Succeeded');
    expect(p.status?.containerStatuses?.[0]?.imageID).toBe(`sha256:${imageId}`);
    expect(await logOf('img-cmd')).toBe('entry from-cmd\n');
    const r = await kubectl(cluster!.kubeconfigPath, ['run', 'img-args', `--image=${IMAGE}`, '--restart=Never', '--', 'one', 'two']);
    expect(r.stderr).toBe('');
    await podDone('img-args');
    const logs = await kubectl(cluster!.kubeconfigPath, ['logs', 'img-args']);
    expect(logs.stdout).toBe('entry one two\n');
  });

  test('a Job made with kubectl create job runs in the image and completes', async () => {
    const r = await kubectl(cluster!.kubeconfigPath, [
      'create',
      'job',
      'img-job',
      `--image=${IMAGE}`,
      '--',
      'sh',
      '-c',
      'echo job in $(pwd) as $(id -u)',
    ]);
    expect(r.code).toBe(0);
    const job = await jobDone(c.batch, ns, 'img-job', WAIT_MS);
    expect(job.status?.succeeded).toBe(1);
    const logs = await kubectl(cluster!.kubeconfigPath, ['logs', 'job/img-job']);
    expect(logs.stdout).toBe('job in /work as 1234\n');
  });

  test('env comes from the image under the pod env; working dir and user from the image; host env is not inherited', async () => {
    const script = 'echo "$GREETING $OVERRIDE $POD"; pwd; id -u; id -g; echo "$HOME $PATH"; echo "node_options=${NODE_OPTIONS:-unset}"';
    await run(
      pod('img-env', {
        command: ['sh', '-c', script],
        env: [
          { name: 'OVERRIDE', value: 'pod' },
          { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ],
      }),
    );
    expect((await logOf('img-env')).split('\n')).toEqual([
      'hello-from-image pod img-env',
      '/work',
      '1234',
      '2345',
      '/home/app /bin',
      'node_options=unset',
      '',
    ]);
  });

  test('the container workingDir and securityContext.runAsUser/runAsGroup override the image', async () => {
    await run(
      pod(
        'img-wd',
        { command: ['sh', '-c', 'pwd; id -u; id -g; echo "$HOME"'], workingDir: '/scratch/made', securityContext: { runAsUser: 0 } },
        { securityContext: { runAsGroup: 7 } },
      ),
    );
    expect((await logOf('img-wd')).split('\n')).toEqual(['/scratch/made', '0', '7', '/root', '']);
  });

  test('each pod writes to its own layer: another pod of the image, and the image, do not see it', async () => {
    const writer = pod('img-writer', {
      command: ['sh', '-c', 'echo changed > /data/image-file; echo new > /work/new; touch /bin/added; cat /data/image-file; sleep 30'],
      securityContext: { runAsUser: 0 },
    });
    await c.core.createNamespacedPod({ namespace: ns, body: writer });
    await until('the writer to write', async () => (await logOf('img-writer')) === 'changed\n', WAIT_MS);
    await run(pod('img-reader', { command: ['sh', '-c', 'cat /data/image-file; ls /work; ls /bin/added 2>&1 || true'] }));
    expect(await logOf('img-reader')).toBe('from image\nls: /bin/added: No such file or directory\n');
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'img-writer', gracePeriodSeconds: 0 });
    const root = buildah('mount', imageRootName(imageId));
    expect(readFileSync(join(root, 'data/image-file'), 'utf8')).toBe('from image\n');
    expect(existsSync(join(root, 'work/new'))).toBe(false);
    // one shared read-only root for every pod of the image
    expect(
      buildah('containers', '--notruncate', '--format', '{{.ContainerName}}')
        .split('\n')
        .filter((n) => n === imageRootName(imageId)),
    ).toHaveLength(1);
  });

  test('hostPath, secret and configMap volumes are mounted inside the root; readOnly holds; a script in a volume runs', async () => {
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'img-secret' }, stringData: { token: 's3cr3t' } } });
    await c.core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: { name: 'img-config' },
        data: {
          'run.sh':
            '#!/bin/sh\necho "script as $(id -u)"\ncat /var/run/secrets/app/token; echo\necho hi > /var/lib/toil/out\ntouch /var/run/secrets/app/x 2>/dev/null && echo writable || echo read-only\n',
        },
      },
    });
    await run(
      pod(
        'img-vols',
        {
          command: ['/etc/conf/run.sh'],
          securityContext: { runAsUser: 0 },
          volumeMounts: [
            { name: 'cache', mountPath: '/var/lib/toil' },
            { name: 'sec', mountPath: '/var/run/secrets/app' },
            { name: 'conf', mountPath: '/etc/conf' },
          ],
        },
        {
          nodeSelector: { 'kubernetes.io/hostname': 'node-1' },
          volumes: [
            { name: 'cache', hostPath: { path: '/var/lib/toil', type: 'DirectoryOrCreate' } },
            { name: 'sec', secret: { secretName: 'img-secret' } },
            { name: 'conf', configMap: { name: 'img-config', defaultMode: 0o755 } },
          ],
        },
      ),
    );
    const log = await logOf('img-vols');
    expect(log).toBe('script as 0\ns3cr3t\nread-only\n');
    expect(readFileSync(join(cluster!.hostPathDir('node-1', '/var/lib/toil'), 'out'), 'utf8')).toBe('hi\n');
  });

  test("/etc/hosts names the pod; /proc is the pod's own", async () => {
    await run(pod('img-etc', { command: ['sh', '-c', 'cat /etc/hosts; cat /etc/hostname; ls /proc | grep -c "^[0-9]"'] }));
    const lines = (await logOf('img-etc')).trim().split('\n');
    expect(lines).toContain('127.0.0.1\timg-etc');
    expect(lines).toContain('img-etc');
    expect(Number(lines.at(-1))).toBeLessThan(5); // the init shell and this pod's command, not the host's processes
  });
});

describe('failures as a real kubelet reports them', () => {
  test('a command the image does not have is a StartError (judged inside the image, not on the host)', async () => {
    const p = await run(pod('img-nocmd', { command: ['node', '-e', '0'] }));
    const t = p.status?.containerStatuses?.[0]?.state?.terminated;
    expect(t?.reason).toBe('StartError');
    expect(t?.exitCode).toBe(128);
    expect(t?.message).toContain('exec: "node": executable file not found in $PATH');
  });

  test('an image not in local storage is ErrImagePull, then ImagePullBackOff', async () => {
    const missing = `${tag}-missing:v1`;
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'img-missing' },
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: missing, command: ['sh'] }] },
      },
    });
    const w = await waitingReason('img-missing', 'ErrImagePull');
    expect(w.message).toBe(
      `Failed to pull image "${missing}": rpc error: code = NotFound desc = failed to pull and unpack image "${missing}": failed to resolve reference "${missing}": not found`,
    );
    await waitingReason('img-missing', 'ImagePullBackOff');
    const events = await eventsOf('img-missing');
    expect(events).toContain(`Pulling: Pulling image "${missing}"`);
    expect(events).toContain('Failed: Error: ErrImagePull');
    expect(events).toContain(`BackOff: Back-off pulling image "${missing}"`);
  });

  test('an image whose user is not in its /etc/passwd is a CreateContainerError; runAsUser gets past it', async () => {
    await c.core.createNamespacedPod({
      namespace: ns,
      body: {
        ...pod('img-nouser', { command: ['id', '-u'] }),
        spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: GHOST, command: ['id', '-u'] }] },
      },
    });
    const w = await waitingReason('img-nouser', 'CreateContainerError');
    expect(w.message).toBe('unable to find user ghost: no matching entries in passwd file');
    expect(await eventsOf('img-nouser')).toContain('Failed: Error: unable to find user ghost: no matching entries in passwd file');
    await run({
      metadata: { name: 'img-asuser' },
      spec: {
        restartPolicy: 'Never',
        securityContext: { runAsUser: 4321 },
        containers: [{ name: 'main', image: GHOST, command: ['id', '-u'] }],
      },
    });
    expect(await logOf('img-asuser')).toBe('4321\n');
  });

  test('an image configured in the images option (and not in storage) still runs as a host process', async () => {
    const p = await run({
      metadata: { name: 'img-process' },
      spec: {
        restartPolicy: 'Never',
        containers: [{ name: 'main', image: 'busybox:1.36', command: ['node', '-e', 'console.log(process.version.startsWith("v22"))'] }],
      },
    });
    expect(p.status?.phase).toBe('Succeeded');
    expect(await logOf('img-process')).toBe('true\n');
  });

  test("the image's command is PID 1 of the pod, as in a real container", async () => {
    // the kubelet turns `$$` in command and args into `$`, so the shell is given `echo $$`
    await run(pod('img-pid1', { command: ['sh', '-c', 'echo $$$$; cat /proc/1/cmdline | tr "\\0" " "'] }));
    expect((await logOf('img-pid1')).split('\n')[0]).toBe('1');
  });

  test('deleting a pod sends SIGTERM to the command inside the image', async () => {
    const script = 'trap "echo term > /var/lib/toil/term-seen; exit 0" TERM; echo ready; while :; do sleep 0.2 & wait $!; done';
    await c.core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'img-term',
        { command: ['sh', '-c', script], securityContext: { runAsUser: 0 }, volumeMounts: [{ name: 'cache', mountPath: '/var/lib/toil' }] },
        {
          nodeSelector: { 'kubernetes.io/hostname': 'node-2' },
          volumes: [{ name: 'cache', hostPath: { path: '/var/lib/toil', type: 'DirectoryOrCreate' } }],
        },
      ),
    });
    await until('img-term to be ready', async () => (await logOf('img-term')) === 'ready\n', WAIT_MS);
    const t0 = Date.now();
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'img-term', gracePeriodSeconds: 20 });
    await until('img-term to be gone', async () => !cluster!.list('pods', ns).some((p) => p.metadata.name === 'img-term'));
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(readFileSync(join(cluster!.hostPathDir('node-2', '/var/lib/toil'), 'term-seen'), 'utf8')).toBe('term\n');
  });

  test('a container over limits.memory is OOMKilled, also when its processes leave its process group (as under tini)', async () => {
    const p = await run(
      pod('img-oom', {
        command: ['sh', '-c', 'setsid dd if=/dev/zero of=/dev/null bs=400M count=1000000; echo survived'],
        resources: { limits: { memory: '64Mi' } },
      }),
    );
    expect(p.status?.phase).toBe('Failed');
    expect(p.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    expect(await logOf('img-oom')).not.toContain('survived');
  });

  test('a PID 1 without a SIGTERM handler lives on until the grace period ends (then SIGKILL)', async () => {
    await c.core.createNamespacedPod({ namespace: ns, body: pod('img-noterm', { command: ['sh', '-c', 'echo up; exec sleep 60'] }) });
    await until('img-noterm to run its command', async () => (await logOf('img-noterm')) === 'up\n', WAIT_MS);
    const t0 = Date.now();
    await c.core.deleteNamespacedPod({ namespace: ns, name: 'img-noterm', gracePeriodSeconds: 2 });
    await until('img-noterm to be gone', async () => !cluster!.list('pods', ns).some((p) => p.metadata.name === 'img-noterm'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
