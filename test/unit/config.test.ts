/** Option declarations, configuration layers, config files and URL redaction: the pure parts. */
import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { addRunOptions, environmentHelp, flagValues } from '../../src/cli/runOptions.js';
import { redactUrl } from '../../src/filestore/download.js';
import { ConfigSchema, environmentLayer, optionLayer, parseConfig, resolveConfig } from '../../src/workflow/config.js';
import { configFileLayer } from '../../src/workflow/configFile.js';
import { didYouMean } from '../../src/nearest.js';
import { OPTIONS, optionList } from '../../src/workflow/options.js';

const FILE = '/etc/toil/config.yaml';

describe('option declarations', () => {
  it('make the schema: every declared option is a configuration field, with its default', () => {
    expect(Object.keys(ConfigSchema.shape).sort()).toEqual(['jobStore', ...Object.keys(OPTIONS)].sort());
    const c = parseConfig({ jobStore: 'x' }, {});
    expect(c).toMatchObject({
      batchSystem: 'single_machine',
      retryCount: 1,
      clean: 'onSuccess',
      logLevel: 'info',
      defaultMemory: 2 * 2 ** 30,
      restart: false,
    });
    expect(c.maxCores).toBeUndefined();
  });

  it('make the flags: one per option with a flag, plus the log level shortcuts and --config', () => {
    const cmd = addRunOptions(new Command('run'));
    const flags = cmd.options.map((o) => o.flags);
    for (const [key, d] of optionList()) {
      if (d.envOnly) expect(flags.some((f) => f.startsWith(`--${key}`))).toBe(false);
      else expect(flags.some((f) => f === `--${key}` || f.startsWith(`--${key} `))).toBe(true);
    }
    expect(flags).toEqual(
      expect.arrayContaining([
        '--config <file>',
        '--disableCaching [bool]',
        '--restart',
        '--retryCount <n>',
        '--logDebug',
        '--logCritical',
      ]),
    );
    expect(cmd.options.find((o) => o.long === '--batchSystem')?.argChoices).toEqual(['single_machine', 'kubernetes']);
    expect(cmd.options.find((o) => o.long === '--config')?.envVar).toBe('TOIL_CONFIG');
  });

  it('list every environment variable in help', () => {
    const help = environmentHelp();
    for (const v of [
      'TOIL_CONFIG',
      'TOIL_WORKDIR',
      'TOIL_KUBERNETES_OWNER',
      'TOIL_KUBERNETES_HOST_PATH',
      'TOIL_KUBERNETES_SERVICE_ACCOUNT',
      'TOIL_AWS_SECRET_NAME',
      'TOIL_APPLIANCE_SELF',
    ]) {
      expect(help).toContain(v);
    }
  });
});

describe('flags', () => {
  it('map shortcuts onto their option, the most verbose winning, and leave unset options out', () => {
    expect(flagValues({ logDebug: true, logError: true, logLevel: 'critical' })).toEqual({ logLevel: 'debug' });
    expect(flagValues({ logLevel: 'warning', retryCount: '3', restart: true, disableCaching: true })).toEqual({
      logLevel: 'warning',
      retryCount: '3',
      restart: true,
      disableCaching: true,
    });
    expect(flagValues({})).toEqual({});
  });
});

describe('layers', () => {
  const env = { TOIL_WORKDIR: '/env', TOIL_KUBERNETES_OWNER: 'envuser', TOIL_KUBERNETES_HOST_PATH: '' };

  it('take environment variables as defaults, skipping empty ones', () => {
    expect(environmentLayer(env).values).toEqual({ workDir: '/env', kubernetesOwner: 'envuser' });
    const c = parseConfig({ jobStore: 'x' }, { ...env, TOIL_AWS_SECRET_NAME: 's3-credentials', TOIL_APPLIANCE_SELF: 'img:1' });
    expect(c).toMatchObject({ workDir: '/env', kubernetesOwner: 'envuser', awsSecretName: 's3-credentials', applianceImage: 'img:1' });
    expect(c.kubernetesHostPath).toBeUndefined();
  });

  it('give precedence to flags over the file over the environment', () => {
    const file = configFileLayer(FILE, 'workDir: /file\nretryCount: 3\nkubernetesOwner: fileuser\n');
    const c = resolveConfig([environmentLayer(env), file, optionLayer({ jobStore: 'x', retryCount: '5' })]);
    expect(c).toMatchObject({ workDir: '/file', retryCount: 5, kubernetesOwner: 'fileuser' });
    const d = resolveConfig([environmentLayer(env), configFileLayer(FILE, 'clean: never\n'), optionLayer({ jobStore: 'x' })]);
    expect(d).toMatchObject({ workDir: '/env', clean: 'never', kubernetesOwner: 'envuser' });
  });

  it('name a bad value as the user wrote it: flag, file key or variable', () => {
    const at = (layers: Parameters<typeof resolveConfig>[0]) => () => resolveConfig([...layers, optionLayer({ jobStore: 'x' })]);
    expect(at([optionLayer({ retryCount: 'x' })])).toThrow("--retryCount: expected a whole number (got 'x')");
    expect(at([configFileLayer(FILE, '--retryCount: x\n')])).toThrow(`${FILE}: --retryCount: expected a whole number (got 'x')`);
    expect(at([configFileLayer(FILE, 'clean: sometimes\n')])).toThrow(
      `${FILE}: clean: expected one of always, onError, never, onSuccess (got 'sometimes')`,
    );
    expect(at([configFileLayer(FILE, 'defaultMemory: lots\n')])).toThrow(`${FILE}: defaultMemory: not a size`);
    expect(at([configFileLayer(FILE, 'maxCores: -1\n')])).toThrow(`${FILE}: maxCores:`);
    expect(at([environmentLayer({ TOIL_KUBERNETES_OWNER: 'u' }), optionLayer({ kubernetesOwner: 7 })])).toThrow(
      "--kubernetesOwner: expected a string (got '7')",
    );
    expect(at([optionLayer({ retryCount: [1] })])).toThrow(/^--retryCount: expected a single value/);
    expect(() => parseConfig({ jobStore: 'x', disableCaching: 'perhaps' }, {})).toThrow('--disableCaching: expected true or false');
    // Only true and false, as documented: 'yes' is refused rather than guessed.
    for (const v of ['yes', '1', 'on', 'no'])
      expect(() => parseConfig({ jobStore: 'x', disableCaching: v }, {})).toThrow(`--disableCaching: expected true or false (got '${v}')`);
    expect(parseConfig({ jobStore: 'x', disableCaching: 'TRUE', defaultPreemptible: 'false' }, {})).toMatchObject({
      disableCaching: true,
      defaultPreemptible: false,
    });
    expect(() => parseConfig({ jobStore: 'x', nonsense: 1 }, {})).toThrow("unknown option 'nonsense'");
  });
});

describe('config files', () => {
  it('read YAML values as flags are read: numbers, sizes, booleans, enums, with or without --', () => {
    const layer = configFileLayer(
      FILE,
      'batchSystem: kubernetes\nretryCount: 3\n--clean: never\nlogLevel: DEBUG\nkubernetesOwner: demouser\ndefaultMemory: 4Gi\ndisableCaching: true\nmaxCores:\n',
    );
    const c = resolveConfig([layer, optionLayer({ jobStore: 'aws:us-east-1:x' })]);
    expect(c).toMatchObject({
      batchSystem: 'kubernetes',
      retryCount: 3,
      clean: 'never',
      logLevel: 'debug',
      kubernetesOwner: 'demouser',
      defaultMemory: 4 * 2 ** 30,
      disableCaching: true,
    });
    expect(c.maxCores).toBeUndefined();
    expect(configFileLayer(FILE, 'kubernetesOwner: 1234\nrestart: true\n').values).toEqual({ kubernetesOwner: '1234', restart: 'true' });
    expect(configFileLayer(FILE, '').values).toEqual({});
    expect(configFileLayer(FILE, '# only a comment\n').values).toEqual({});
  });

  it.each([
    ['an unknown key, with a suggestion', 'retryCont: 3\n', `${FILE}: unknown option 'retryCont' (did you mean retryCount?)`],
    ['an unknown key far from any option', 'colour: blue\n', `${FILE}: unknown option 'colour'`],
    ['the job store', 'jobStore: ./store\n', `${FILE}: jobStore cannot be set in a config file`],
    ['a shortcut flag', 'logDebug: true\n', `${FILE}: logDebug is a command-line shortcut: write 'logLevel: debug'`],
    [
      'an environment-only setting',
      'awsSecretName: s\n',
      `${FILE}: awsSecretName is set by the environment variable TOIL_AWS_SECRET_NAME only`,
    ],
    ['a key given twice', 'retryCount: 1\n--retryCount: 2\n', `${FILE}: retryCount is given twice`],
    ['a list value', 'retryCount: [1, 2]\n', `${FILE}: retryCount: expected a single value, not a list or mapping`],
    ['a list at the top', '- retryCount\n', `${FILE}: expected a mapping of option names to values`],
    ['a scalar at the top', 'retryCount 3\n', `${FILE}: expected a mapping of option names to values`],
    ['invalid YAML', 'retryCount: [3\n', `${FILE}: invalid YAML`],
    ['a duplicate key', 'retryCount: 1\nretryCount: 2\n', `${FILE}: invalid YAML`],
  ])('refuse %s, naming the file', (_what, text, message) => {
    expect(() => configFileLayer(FILE, text)).toThrow(message);
  });

  it('suggest only close names', () => {
    const names = Object.keys(OPTIONS);
    expect(didYouMean('batchsystem', names)).toBe('batchSystem');
    expect(didYouMean('defaultMemroy', names)).toBe('defaultMemory');
    expect(didYouMean('colour', names)).toBeUndefined();
  });
});

describe('redactUrl', () => {
  it.each([
    ['https://user:pa55@example.org/flows/wf.ts?X-Amz-Signature=abc#frag', 'https://example.org/flows/wf.ts?…'],
    ['http://127.0.0.1:8080/wf.ts', 'http://127.0.0.1:8080/wf.ts'],
    ['s3://bucket/dir/wf.ts', 's3://bucket/dir/wf.ts'],
    ['https://user:pa55@exa mple/wf.ts?token=abc', 'https://exa mple/wf.ts?…'],
  ])('%s → %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
    expect(redactUrl(url)).not.toMatch(/pa55|abc/);
  });
});
