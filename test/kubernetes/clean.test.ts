/**
 * `toil clean` after a leader died: it finds the worker Jobs from the job store's record of
 * where the leader ran, with the user's own kubeconfig (any context for that server), and no
 * Kubernetes flags or KUBECONFIG; with no credentials for that server it names the server and
 * keeps the store.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { SHARED_TMP, toil } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';
import { nodesFor, startBusyLeader } from './busyLeader.js';
import { useK8sEnv } from './useK8sEnv.js';

const t = useTempStore(SHARED_TMP);
const k = useK8sEnv({ nodes: nodesFor(3) });

type Named = { name: string };
type KubeconfigDoc = { clusters: Named[]; contexts: Named[]; users: Named[]; 'current-context': string };

/**
 * A home directory whose ~/.kube/config has a current context for a cluster that is not the
 * test cluster; with `withTestCluster`, the test cluster is there too, under another context.
 */
async function homeWith(name: string, opts: { withTestCluster: boolean }): Promise<string> {
  const home = path.join(t.dir, name);
  await mkdir(path.join(home, '.kube'), { recursive: true });
  const doc: KubeconfigDoc = { clusters: [], contexts: [], users: [], 'current-context': 'elsewhere' };
  if (opts.withTestCluster) {
    const own = parse(await readFile(k.cluster.kubeconfigPath, 'utf8')) as KubeconfigDoc;
    doc.clusters.push(...own.clusters);
    doc.contexts.push(...own.contexts);
    doc.users.push(...own.users);
  }
  doc.clusters.push({ name: 'elsewhere', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } } as Named);
  doc.users.push({ name: 'elsewhere', user: { token: 'nobody' } } as Named);
  doc.contexts.push({ name: 'elsewhere', context: { cluster: 'elsewhere', user: 'elsewhere', namespace: 'other' } } as Named);
  await writeFile(path.join(home, '.kube', 'config'), stringify(doc), { mode: 0o600 });
  return home;
}

describe('toil clean finds a dead leader’s worker Jobs from the job store', () => {
  it('with no Kubernetes flags or KUBECONFIG; naming the server when no credentials reach it', async () => {
    const leader = await startBusyLeader(k, { dir: path.join(t.dir, 'run'), count: 3 });
    leader.child.kill('SIGKILL');
    await leader.done;
    expect(k.leftoverJobs()).toBe(3);
    // The user's environment: no KUBECONFIG, no in-cluster account.
    const env = (home: string): NodeJS.ProcessEnv => ({ ...k.env, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', HOME: home });

    const lost = await toil(['clean', leader.locator], { env: env(await homeWith('home-without', { withTestCluster: false })) });
    expect(lost.stderr).toContain(`no credentials here reach the Kubernetes API at ${k.cluster.server}`);
    expect(lost.stderr).toMatch(/is kept, as it records where they are/);
    expect(lost.code).toBe(2);
    expect(k.leftoverJobs()).toBe(3);
    const status = await toil(['status', leader.locator], { env: k.env });
    expect(status.code).toBe(0);

    const c = await toil(['clean', leader.locator], { env: env(await homeWith('home-with', { withTestCluster: true })) });
    expect(c.stderr).toMatch(/deleted 3 worker Job\(s\) of workflow \S+ in namespace 'default'/);
    expect(c.stderr).toMatch(/removed aws:/);
    expect(c.code).toBe(0);
    expect(k.leftoverJobs()).toBe(0);
    const gone = await toil(['status', leader.locator], { env: k.env });
    expect(gone.code).not.toBe(0);
  }, 300_000);
});
