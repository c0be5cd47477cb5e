/**
 * `npm run sandbox` tells the truth: what it prints works from another shell (the kubeconfig,
 * and `toil status` from this machine with the credentials variable it names), it warns of
 * kubectl's "waiting to start" and says how to look at the images; on Ctrl-C (SIGINT to its
 * process group, as a terminal sends it) it says what it stopped, removes its state and says
 * what stays.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { kubectl } from '@toil-ts/testbed/cluster/testutil';
import { pathExists, ROOT, tempDir, toil, waitFor } from '../helpers/run.js';

describe('npm run sandbox', () => {
  it('prints what works from another shell, and on Ctrl-C what it stopped, removing its state', async () => {
    const t = await tempDir('toil-sandbox-');
    const dir = path.join(t.dir, 'sandbox');
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'test/kubernetes/sandbox.ts', '--dir', dir],
      {
        cwd: ROOT,
        env: { ...process.env, NODE_OPTIONS: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group, as a terminal's foreground job
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor(() => out.includes('the images stay'), 120_000, 'the sandbox to print what to run next');
      expect(out).toMatch(/"is waiting to start"/);
      expect(out).toMatch(/buildah images --storage-driver vfs/);
      const kubeconfig = /export KUBECONFIG=(\S+)/.exec(out)?.[1];
      expect(kubeconfig).toBe(path.join(dir, 'cluster', 'kubeconfig'));
      expect((await kubectl(kubeconfig!, ['get', 'nodes', '-o', 'name'])).stdout.trim().split('\n')).toHaveLength(2);
      // toil from this machine, with nothing but what it prints (and an empty home: no ~/.aws)
      const aws = /export AWS_SHARED_CREDENTIALS_FILE=(\S+) AWS_PROFILE=default/.exec(out)?.[1];
      expect(aws).toBe(path.join(dir, 'credentials'));
      const noEndpoint = {
        AWS_ENDPOINT_URL_S3: '',
        AWS_ENDPOINT_URL: '',
        AWS_CONFIG_FILE: '',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
      };
      const status = await toil(['status', 'aws:us-west-2:demouser-toil-test-jobstore'], {
        env: { ...noEndpoint, HOME: t.dir, AWS_SHARED_CREDENTIALS_FILE: aws!, AWS_PROFILE: 'default' },
      });
      expect(status.stderr).toMatch(/job store aws:us-west-2:demouser-toil-test-jobstore does not exist/);

      process.kill(-child.pid!, 'SIGINT');
      // 0 from the sandbox; 130 (a shell's code for Ctrl-C) when tsx, which runs it, takes the
      // signal as its own under load. Either way the sandbox must have stopped and cleaned up (below).
      expect([0, 130]).toContain(await exited);
      expect(out).toMatch(/sandbox: stopped the test cluster at https:\/\/127\.0\.0\.1:\d+ \(\d+ pod\(s\)\) and the S3 endpoint/);
      expect(out).toContain(`sandbox: removed ${dir} (`);
      expect(out).toMatch(/sandbox: kept: the images/);
      expect(await pathExists(dir)).toBe(false);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
      await t.cleanup();
    }
  }, 180_000);
});
