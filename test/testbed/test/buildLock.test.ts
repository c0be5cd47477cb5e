/**
 * The machine-wide image build lock: a second build waits for the first, and a lock left by a
 * process that died is taken over rather than waited on.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { withBuildLock } from '../src/images/buildLock.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'build-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const nap = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the image build lock', () => {
  it('runs one build at a time; the waiter says what it waits for', async () => {
    const order: string[] = [];
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    const first = withBuildLock('img', { log, dir }, async () => {
      order.push('first start');
      await nap(1200);
      order.push('first end');
    });
    await nap(50);
    const second = withBuildLock('img', { log, dir }, async () => {
      order.push('second start');
    });
    await Promise.all([first, second]);
    expect(order).toEqual(['first start', 'first end', 'second start']);
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^waiting for the img build of pid ${process.pid} to finish`))]);
    expect(existsSync(path.join(dir, 'toil-ts-build-img.lock'))).toBe(false);
  });

  it('takes over the lock of a process that is gone, and releases it when the build throws', async () => {
    const dead = spawnSync('true').pid;
    await writeFile(path.join(dir, 'toil-ts-build-img.lock'), String(dead));
    const lines: string[] = [];
    const started = Date.now();
    await expect(
      withBuildLock('img', { log: (l) => lines.push(l), dir }, () => Promise.reject(new Error('the build failed'))),
    ).rejects.toThrow('the build failed');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(lines).toEqual([`taking over the img build lock of pid ${dead}, which is gone`]);
    expect(existsSync(path.join(dir, 'toil-ts-build-img.lock'))).toBe(false);
  });

  it('gives up after its bound, naming the owner', async () => {
    await writeFile(path.join(dir, 'toil-ts-build-img.lock'), String(process.pid));
    await expect(withBuildLock('img', { log: () => undefined, dir, timeoutMs: 600 }, async () => 1)).rejects.toThrow(
      new RegExp(`gave up waiting for the img build of pid ${process.pid}`),
    );
  });
});
