import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { FileJobStore } from '../../src/jobstore/file/fileJobStore.js';
import { parseLocator } from '../../src/jobstore/locator.js';
import { describeJobStoreConformance } from './conformance.js';

describeJobStoreConformance('file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-fjs-'));
  const root = path.join(dir, 'store');
  return {
    store: new FileJobStore(root),
    // Another process, one that does not flush: its writes are quick next to the first handle's.
    other: () => new FileJobStore(root, { fsync: false }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('file job store specifics', () => {
  it('refuses to create a store in a non-empty directory that is not a store', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-fjs-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(path.join(dir, 'precious.txt'), 'keep me');
      const store = new FileJobStore(dir);
      await expect(store.create()).rejects.toMatchObject({ code: 'JOBSTORE_EXISTS' });
      await store.destroy();
      const { readFile } = await import('node:fs/promises');
      expect(await readFile(path.join(dir, 'precious.txt'), 'utf8')).toBe('keep me');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('locators', () => {
  it('parses file and aws locators', () => {
    expect(parseLocator('file:/tmp/x')).toMatchObject({ kind: 'file', path: '/tmp/x' });
    expect(parseLocator('rel/dir')).toMatchObject({ kind: 'file', path: path.resolve('rel/dir') });
    expect(parseLocator('aws:us-west-2:demouser-toil-test-jobstore')).toMatchObject({
      kind: 'aws',
      region: 'us-west-2',
      name: 'demouser-toil-test-jobstore',
    });
  });
  it.each([
    ['aws:us-west-2', /expected aws:<region>:<name>/],
    ['aws:nowhere:abc', /invalid AWS region 'nowhere'/],
    ['aws:us-west-2:Bad_Name', /invalid AWS job store name 'Bad_Name'/],
    ['aws:us-west-2:a--b', /invalid AWS job store name/],
    ['gs:bucket', /unknown job store type 'gs'/],
    ['', /empty/],
  ])('rejects %s', (loc, msg) => {
    expect(() => parseLocator(loc)).toThrow(msg);
  });
});
