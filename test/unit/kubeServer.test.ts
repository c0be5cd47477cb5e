/**
 * Finding credentials for a recorded API server (kubeConfig.ts accessForServer), as `toil
 * clean` does: real kubeconfig files with real CA certificates (made by openssl), no cluster.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { accessForServer, serverIdentity } from '../../src/batch/kubeConfig.js';
import { UsageError } from '../../src/errors.js';

let dir = '';
const ca: Record<string, string> = {};

function makeCa(name: string): string {
  const key = path.join(dir, `${name}.key`);
  const out = path.join(dir, `${name}.crt`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      out,
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
    ],
    {
      stdio: 'ignore',
    },
  );
  return readFileSync(out, 'utf8');
}

/** A kubeconfig with one context per cluster; the first is current. */
async function kubeconfig(file: string, clusters: Array<{ name: string; server: string; caPem: string }>): Promise<string> {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': clusters[0]!.name,
    clusters: clusters.map((c) => ({
      name: c.name,
      cluster: { server: c.server, 'certificate-authority-data': Buffer.from(c.caPem).toString('base64') },
    })),
    users: clusters.map((c) => ({ name: c.name, user: { token: `token-${c.name}` } })),
    contexts: clusters.map((c) => ({ name: c.name, context: { cluster: c.name, user: c.name, namespace: `ns-${c.name}` } })),
  };
  const p = path.join(dir, file);
  await writeFile(p, stringify(doc), { mode: 0o600 });
  return p;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'toil-kubeserver-'));
  ca['a'] = makeCa('cluster-a');
  ca['b'] = makeCa('cluster-b');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('credentials for a recorded API server', () => {
  it('the context whose cluster has that URL, current or not, in the namespace recorded', async () => {
    const file = await kubeconfig('one', [
      { name: 'a', server: 'https://a.example:6443', caPem: ca['a']! },
      { name: 'b', server: 'https://b.example:443/', caPem: ca['b']! },
    ]);
    const access = accessForServer({ server: 'https://b.example:443' }, 'work', { KUBECONFIG: file });
    expect(access.kc.getCurrentContext()).toBe('b');
    expect(access.namespace).toBe('work');
    expect(access.inCluster).toBe(false);
  });

  it('else the context whose cluster has that CA (a leader in a pod records the in-cluster address)', async () => {
    const file = await kubeconfig('two', [
      { name: 'a', server: 'https://a.example:6443', caPem: ca['a']! },
      { name: 'b', server: 'https://b.example:443', caPem: ca['b']! },
    ]);
    const recorded = serverIdentity(accessForServer({ server: 'https://b.example:443' }, 'x', { KUBECONFIG: file }));
    expect(recorded.caSha256).toMatch(/^[0-9a-f]{64}$/);
    const access = accessForServer({ server: 'https://10.96.0.1:443', caSha256: recorded.caSha256 }, 'work', { KUBECONFIG: file });
    expect(access.kc.getCurrentContext()).toBe('b');
  });

  it('looks through every file of KUBECONFIG', async () => {
    const first = await kubeconfig('three-a', [{ name: 'a', server: 'https://a.example:6443', caPem: ca['a']! }]);
    const second = await kubeconfig('three-b', [{ name: 'b', server: 'https://b.example:443', caPem: ca['b']! }]);
    const access = accessForServer({ server: 'https://b.example:443' }, 'work', { KUBECONFIG: `${first}:${second}` });
    expect(access.kc.getCurrentCluster()?.server).toBe('https://b.example:443');
  });

  it('a UsageError naming the server when no context is for it', async () => {
    const file = await kubeconfig('four', [{ name: 'a', server: 'https://a.example:6443', caPem: ca['a']! }]);
    const find = () => accessForServer({ server: 'https://gone.example:443', caSha256: 'ab'.repeat(32) }, 'work', { KUBECONFIG: file });
    expect(find).toThrow(UsageError);
    expect(find).toThrow(/no credentials here reach the Kubernetes API at https:\/\/gone\.example:443/);
  });
});
