/**
 * `toil run --config FILE` and TOIL_CONFIG through the real CLI: options from a YAML file,
 * flags over the file over environment variables, and bad files refused with exit 2 before
 * anything is created.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathExists, toil, workflow } from '../helpers/run.js';
import { useTempStore } from '../helpers/tempStore.js';

const t = useTempStore();

async function configFile(text: string, name = 'toil.yaml'): Promise<string> {
  const file = path.join(t.dir, name);
  await writeFile(file, text);
  return file;
}

async function dirs(...names: string[]): Promise<string[]> {
  const made = names.map((n) => path.join(t.dir, n));
  for (const d of made) await mkdir(d);
  return made;
}

interface Report {
  cores: number;
  memory: number;
  tmp: string;
}

describe('options from a config file', () => {
  it('sets options by Toil name (with or without --), validated as flags are', async () => {
    const file = await configFile('retryCount: 0\nclean: never\nlogLevel: warning\n--defaultMemory: 3Gi\ndefaultCores: 2\n');
    const r = await toil(['run', workflow('settings.ts'), t.store, '--config', file]);
    expect(r.code).toBe(0);
    const rep = JSON.parse(r.stdout) as Report;
    expect(rep).toMatchObject({ memory: 3 * 2 ** 30, cores: 2 });
    // clean: never keeps the store; logLevel: warning silences the INFO lines.
    expect(await pathExists(t.store)).toBe(true);
    expect(r.stderr).not.toMatch(/INFO/);
  });

  it('lets flags win over the file, and the file over environment variables', async () => {
    const [envDir, fileDir, flagDir] = await dirs('from-env', 'from-file', 'from-flag');
    const file = await configFile(`workDir: ${fileDir}\ndefaultMemory: 3Gi\nclean: never\n`);
    const env = { TOIL_WORKDIR: envDir! };
    const fromFile = await toil(['run', workflow('settings.ts'), t.store, '--config', file], { env });
    expect(fromFile.code).toBe(0);
    expect((JSON.parse(fromFile.stdout) as Report).tmp.startsWith(fileDir!)).toBe(true);
    expect(await pathExists(t.store)).toBe(true);

    const store2 = path.join(t.dir, 'store2');
    const fromFlags = await toil(
      ['run', workflow('settings.ts'), store2, '--config', file, '--workDir', flagDir!, '--defaultMemory', '1Gi', '--clean', 'always'],
      { env },
    );
    expect(fromFlags.code).toBe(0);
    expect(JSON.parse(fromFlags.stdout)).toMatchObject({ memory: 2 ** 30 });
    expect((JSON.parse(fromFlags.stdout) as Report).tmp.startsWith(flagDir!)).toBe(true);
    expect(await pathExists(store2)).toBe(false);

    const store3 = path.join(t.dir, 'store3');
    const noFile = await toil(['run', workflow('settings.ts'), store3], { env });
    expect((JSON.parse(noFile.stdout) as Report).tmp.startsWith(envDir!)).toBe(true);
  });

  it('reads the file TOIL_CONFIG names when --config is not given; --config wins over it', async () => {
    const kept = await configFile('clean: never\n', 'kept.yaml');
    const removed = await configFile('clean: always\n', 'removed.yaml');
    const r = await toil(['run', workflow('settings.ts'), t.store], { env: { TOIL_CONFIG: kept } });
    expect(r.code).toBe(0);
    expect(await pathExists(t.store)).toBe(true);
    const store2 = path.join(t.dir, 'store2');
    const s = await toil(['run', workflow('settings.ts'), store2, '--config', removed], { env: { TOIL_CONFIG: kept } });
    expect(s.code).toBe(0);
    expect(await pathExists(store2)).toBe(false);
  });
});

describe('a bad config file exits 2 naming the file (and the key), and creates nothing', () => {
  const cases: Array<[string, string | undefined, RegExp]> = [
    ['an unknown key', 'retryCont: 2\n', /toil\.yaml: unknown option 'retryCont' \(did you mean retryCount\?\)/],
    ['a bad value', 'retryCount: lots\n', /toil\.yaml: retryCount: expected a whole number \(got 'lots'\)/],
    ['a bad choice', 'batchSystem: slurm\n', /toil\.yaml: batchSystem: expected one of single_machine, kubernetes/],
    ['the job store', 'jobStore: ./elsewhere\n', /toil\.yaml: jobStore cannot be set in a config file/],
    ['invalid YAML', 'retryCount: [2\n', /toil\.yaml: invalid YAML/],
    ['a top level that is not a mapping', '- retryCount: 2\n', /toil\.yaml: expected a mapping of option names/],
    ['a missing file', undefined, /cannot read config file .*toil\.yaml: no such file/],
  ];
  it.each(cases)('%s', async (_what, text, message) => {
    const file = text === undefined ? path.join(t.dir, 'toil.yaml') : await configFile(text);
    const r = await toil(['run', workflow('settings.ts'), t.store, '--config', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
    expect(await pathExists(t.store)).toBe(false);
    expect(await readdir(t.dir)).toEqual(text === undefined ? [] : ['toil.yaml']);
  });

  it('the same through TOIL_CONFIG', async () => {
    const file = await configFile('clean: sometimes\n');
    const r = await toil(['run', workflow('settings.ts'), t.store], { env: { TOIL_CONFIG: file } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/toil\.yaml: clean: expected one of always, onError, never, onSuccess \(got 'sometimes'\)/);
    expect(await pathExists(t.store)).toBe(false);
  });
});

describe('help', () => {
  it('documents --config and TOIL_CONFIG next to every option and its variable', async () => {
    const r = await toil(['run', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--config <file>',
      '--retryCount <n>',
      '--disableCaching [bool]',
      '--logDebug',
      '--kubernetesOwner <name>',
      '--leaseSeconds <seconds>',
    ]) {
      expect(r.stdout).toContain(opt);
    }
    for (const v of [
      'TOIL_CONFIG',
      'TOIL_WORKDIR',
      'TOIL_KUBERNETES_OWNER',
      'TOIL_KUBERNETES_HOST_PATH',
      'TOIL_KUBERNETES_SERVICE_ACCOUNT',
      'TOIL_AWS_SECRET_NAME',
      'TOIL_APPLIANCE_SELF',
    ]) {
      expect(r.stdout).toContain(v);
    }
    expect(r.stdout).toMatch(/retry a failed job \(default 1\)/);
  });

  it('suggests the option meant by a mistyped flag', async () => {
    const r = await toil(['run', workflow('settings.ts'), t.store, '--retrycount', '2']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Did you mean --retryCount\?/);
    expect(await pathExists(t.store)).toBe(false);
  });
});
