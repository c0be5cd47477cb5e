/**
 * A namespace whose ResourceQuota allows two pods: the leader issues a 10-job fan-out, the
 * cluster refuses the pods over the quota (FailedCreate events, the Job controller's back-off),
 * and the leader waits them out, saying in its progress line that it waits for quota, until
 * every job has run.
 */
import { describe, expect, it } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { toil, workflow } from '../helpers/run.js';
import { useK8sEnv } from './useK8sEnv.js';

// The Job controller's back-off after refused creates, capped at 4 s instead of a minute: what is
// tested is that the leader waits them out and says so, not how long the controller waits.
const k = useK8sEnv({ jobApiBackoffMaxMs: 4000 });

const QUOTA = `
apiVersion: v1
kind: ResourceQuota
metadata:
  name: two-pods
spec:
  hard:
    pods: "2"
`;

describe('a namespace with a quota of two pods', () => {
  it('a 10-job fan-out completes, and the progress line says it waited for quota', async () => {
    const kc = k.cluster.kubeconfigPath;
    expect((await kubectl(kc, ['create', 'namespace', 'quota'])).code).toBe(0);
    expect((await kubectl(kc, ['apply', '-n', 'quota', '-f', '-'], QUOTA)).code).toBe(0);
    const secret = await kubectl(kc, ['get', 'secret', 's3-credentials', '-o', 'json']);
    const copy = JSON.parse(secret.stdout) as { metadata: Record<string, unknown> };
    copy.metadata = { name: 's3-credentials', namespace: 'quota' };
    expect((await kubectl(kc, ['apply', '-f', '-'], JSON.stringify(copy))).code).toBe(0);
    // the leader's kubeconfig, with the quota's namespace as its context's
    const config = path.join(k.dir, 'kubeconfig-quota');
    await writeFile(config, (await kubectl(kc, ['config', 'view', '--raw'])).stdout);
    expect((await kubectl(config, ['config', 'set-context', '--current', '--namespace=quota'])).code).toBe(0);
    const r = await toil(
      ['run', workflow('../../examples/fanout.ts'), k.locator(), '--batchSystem', 'kubernetes', '--statusInterval', '1', '--', '10'],
      { env: { ...k.env, KUBECONFIG: config } },
    );
    // a progress line names the most common reasons first ("4 waiting for a pod; 2 waiting for quota …")
    expect(r.stderr).toMatch(
      /queued: (?:[^\n]*; )?\d+ waiting for quota \(pods "[^"]+" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2\)/,
    );
    expect(r.code).toBe(0);
    // 0 + 1 + 4 + … + 81
    expect(r.stdout.trim()).toBe('285');
  }, 600_000);
});
