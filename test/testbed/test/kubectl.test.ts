/** The machine's real kubectl against the test cluster, with its default flags. */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawn } from 'node:child_process';
import { startTestCluster, type TestCluster } from '../src/cluster/index.js';
import { kubectl, until } from '../src/cluster/testutil.js';

let cluster: TestCluster;
let kc: string;
const k = (args: string[], input?: string): ReturnType<typeof kubectl> => kubectl(kc, args, input);

beforeAll(async () => {
  cluster = await startTestCluster({ nodes: [{ name: 'node-1' }] });
  kc = cluster.kubeconfigPath;
});
afterAll(async () => {
  await cluster?.stop();
});

const manifest = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: toil
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: toil
rules:
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch", "create", "delete"]
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: toil
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: toil
subjects:
- kind: ServiceAccount
  name: toil
---
apiVersion: batch/v1
kind: Job
metadata:
  name: hello
  labels: {app: hello}
spec:
  backoffLimit: 0
  template:
    spec:
      serviceAccountName: toil
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.36
        command: ["sh", "-c", "sleep 1; echo hello from $HOSTNAME"]
`;

test('kubectl apply, get, get -w, logs, describe, re-apply, delete', async () => {
  // watch jobs from before anything exists
  const watcher = spawn('kubectl', ['get', 'jobs', '-w', '--no-headers'], { env: { ...process.env, KUBECONFIG: kc } });
  let watched = '';
  watcher.stdout.on('data', (d: Buffer) => {
    watched += d.toString();
  });

  const applied = await k(['apply', '-f', '-'], manifest);
  expect(applied.stderr).toBe('');
  expect(applied.stdout).toBe(
    'serviceaccount/toil created\nrole.rbac.authorization.k8s.io/toil created\nrolebinding.rbac.authorization.k8s.io/toil created\njob.batch/hello created\n',
  );

  const sa = await k(['auth', 'can-i', 'create', 'jobs', '--as', 'system:serviceaccount:default:toil']);
  expect(sa.stdout.trim()).toBe('yes');
  expect((await k(['auth', 'can-i', 'get', 'secrets', '--as', 'system:serviceaccount:default:toil'])).stdout.trim()).toBe('no');

  const waited = await k(['wait', '--for=condition=complete', 'job/hello', '--timeout=20s']);
  expect(waited.stdout).toBe('job.batch/hello condition met\n');
  const labels = JSON.parse((await k(['get', 'job', 'hello', '-o', 'jsonpath={.metadata.labels}'])).stdout) as Record<string, string>;
  expect(labels).toEqual({ app: 'hello' });
  const table = await k(['get', 'jobs']);
  expect(table.stdout).toMatch(/^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\nhello\s+Complete\s+1\/1\s+\d+s\s+\d+s\n$/);
  const pods = await k(['get', 'pods', '-l', 'job-name=hello']);
  expect(pods.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\nhello-[a-z0-9]{5}\s+0\/1\s+Completed\s+0\s+\d+s\n$/);
  const podName = (await k(['get', 'pods', '-l', 'job-name=hello', '-o', 'jsonpath={.items[0].metadata.name}'])).stdout;

  expect((await k(['logs', 'job/hello'])).stdout).toBe(`hello from ${podName}\n`);
  expect((await k(['logs', podName, '--tail=1'])).stdout).toBe(`hello from ${podName}\n`);

  const desc = await k(['describe', 'job', 'hello']);
  expect(desc.stdout).toMatch(/Pods Statuses:\s+0 Active \(0 Ready\) \/ 1 Succeeded \/ 0 Failed/);
  expect(desc.stdout).toMatch(/Normal\s+SuccessfulCreate\s+\S+\s+job-controller\s+Created pod: hello-/);
  expect(desc.stdout).toMatch(/Normal\s+Completed\s+\S+\s+job-controller\s+Job completed/);
  const pdesc = await k(['describe', 'pod', podName]);
  expect(pdesc.stdout).toMatch(/Status:\s+Succeeded/);
  expect(pdesc.stdout).toMatch(/Node:\s+node-1\/127.0.0.1/);
  expect(pdesc.stdout).toMatch(/\/var\/run\/secrets\/kubernetes.io\/serviceaccount from kube-api-access-[a-z0-9]{5} \(ro\)/);
  expect(pdesc.stdout).toMatch(/Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned default\/hello-[a-z0-9]{5} to node-1/);

  // re-apply: unchanged objects stay unchanged; a changed Role is patched (strategic merge, last-applied annotation)
  const again = await k(['apply', '-f', '-'], manifest.replace('"create", "delete"]', '"create"]'));
  expect(again.stdout).toBe(
    'serviceaccount/toil unchanged\nrole.rbac.authorization.k8s.io/toil configured\nrolebinding.rbac.authorization.k8s.io/toil unchanged\njob.batch/hello unchanged\n',
  );
  const role = JSON.parse((await k(['get', 'role', 'toil', '-o', 'json'])).stdout) as {
    rules: { verbs: string[] }[];
    metadata: { annotations: Record<string, string> };
  };
  expect(role.rules[0]!.verbs).toEqual(['get', 'list', 'watch', 'create']);
  const lastApplied = JSON.parse(role.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration']!) as {
    kind: string;
    rules: { verbs: string[] }[];
  };
  expect(lastApplied.kind).toBe('Role');
  expect(lastApplied.rules[0]!.verbs).toEqual(['get', 'list', 'watch', 'create']);
  // a Job's pod template is immutable, as on a real server
  const immut = await k(['apply', '-f', '-'], manifest.replace('sleep 1;', 'sleep 2;'));
  expect(immut.stderr).toContain('The Job "hello" is invalid: spec.template: Invalid value:');
  expect(immut.stderr).toContain('field is immutable');

  const del = await k(['delete', '-f', '-'], manifest);
  expect(del.stdout).toBe(
    'serviceaccount "toil" deleted\nrole.rbac.authorization.k8s.io "toil" deleted\nrolebinding.rbac.authorization.k8s.io "toil" deleted\njob.batch "hello" deleted\n',
  );
  await until('pods gone', async () => (await k(['get', 'pods', '-o', 'name'])).stdout === '', 10_000, 200);
  expect((await k(['get', 'jobs'])).stderr).toBe('No resources found in default namespace.\n');

  await until('watch saw completion', () => /hello\s+Complete\s+1\/1/.test(watched), 5000);
  watcher.kill();
  const lines = watched.trim().split('\n');
  expect(lines[0]).toMatch(/^hello\s+Running\s+0\/1\s+/);
  expect(lines.some((l) => /^hello\s+Complete\s+1\/1/.test(l))).toBe(true);
}, 60_000);

test('kubectl validation errors: unknown fields (strict by default), wrong types and missing fields', async () => {
  const bad = (spec: string): string => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n${spec}`;
  const unknown = await k(['apply', '-f', '-'], bad('  containers:\n  - name: m\n    image: busybox\n    imagee: x\n'));
  expect(unknown.stderr).toBe(
    'Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagee"\n',
  );
  const wrongType = await k(['create', '-f', '-'], bad('  containers:\n  - name: m\n    image: busybox\n    command: echo\n'));
  expect(wrongType.stderr).toBe(
    'Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field Container.spec.containers.command of type []string\n',
  );
  const missing = await k(['create', '-f', '-'], bad('  containers:\n  - name: m\n'));
  expect(missing.stderr).toBe('The Pod "bad" is invalid: spec.containers[0].image: Required value\n');
  expect(
    (
      await k(
        ['apply', '--validate=false', '-f', '-'],
        bad('  containers:\n  - name: m\n    image: busybox\n    command: ["true"]\n    imagee: x\n'),
      )
    ).stdout,
  ).toBe('pod/bad created\n');
});

test('kubectl version, api-versions and cluster-info', async () => {
  expect((await k(['version'])).stdout).toContain('Server Version: v1.32.0');
  expect((await k(['api-versions'])).stdout).toBe(
    'authentication.k8s.io/v1\nauthorization.k8s.io/v1\nbatch/v1\nrbac.authorization.k8s.io/v1\nv1\n',
  );
  expect((await k(['cluster-info'])).stdout).toContain(`Kubernetes control plane is running at ${cluster.server}`);
});

test('kubectl create token gives a token the API server accepts', async () => {
  expect((await k(['create', 'serviceaccount', 'robot'])).stdout).toBe('serviceaccount/robot created\n');
  expect((await k(['create', 'secret', 'generic', 'creds', '--from-literal=k=v'])).stdout).toBe('secret/creds created\n');
  expect((await k(['get', 'secret', 'creds', '-o', 'jsonpath={.data.k}'])).stdout).toBe(Buffer.from('v').toString('base64'));
  const t = await k(['create', 'token', 'robot']);
  expect(t.stderr).toBe('');
  const who = await k(['--token', t.stdout.trim(), 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}']);
  expect(who.stdout).toBe('system:serviceaccount:default:robot');
});

test('npm run cluster prints a kubeconfig path that kubectl can use, and stops on SIGTERM', async () => {
  const { spawn: sp } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const child = sp('npm', ['run', '--silent', 'cluster', '--', '--nodes', '1'], {
    cwd: new URL('..', import.meta.url).pathname,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  try {
    const path = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`npm run cluster exited with ${String(code)}`)));
    });
    const nodes = await kubectl(path, ['get', 'nodes', '-o', 'name']);
    expect(nodes.stdout).toBe('node/node-1\n');
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}, 60_000);
