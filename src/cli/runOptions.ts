/**
 * The flags and help of `toil run`, made from the option declarations, and the configuration
 * they give: flags over the `--config` file over environment variables over defaults.
 */
import { Option, type Command } from 'commander';
import { environmentLayer, givenValues, optionLayer, resolveConfig, type ConfigLayer } from '../workflow/config.js';
import { readConfigFile } from '../workflow/configFile.js';
import { optionList, type OptionDecl } from '../workflow/options.js';

export type RunOpts = Record<string, string | boolean | undefined>;

/** The environment variable that names a config file when --config is not given. */
export const CONFIG_ENV = 'TOIL_CONFIG';

function helpFor(decl: OptionDecl): string {
  // A switch (--restart) is off unless given: no default to show.
  const shownDefault = decl.defaultHelp ?? (decl.default === undefined || decl.value === undefined ? undefined : String(decl.default));
  const notes = [decl.env ? `env ${decl.env}` : undefined, shownDefault === undefined ? undefined : `default ${shownDefault}`].filter(
    Boolean,
  );
  return notes.length ? `${decl.help} (${notes.join('; ')})` : decl.help;
}

function flagFor(key: string, decl: OptionDecl): Option {
  const spelling = decl.value === undefined ? `--${key}` : decl.optionalValue ? `--${key} [${decl.value}]` : `--${key} <${decl.value}>`;
  const flag = new Option(spelling, helpFor(decl));
  // Shown in help only: values are checked with everything else, wherever they come from.
  if (decl.choices) flag.argChoices = [...decl.choices];
  return flag;
}

/** Adds `--config` and one flag per declared option (plus shortcuts such as `--logDebug`). */
export function addRunOptions(cmd: Command): Command {
  cmd.addOption(
    new Option('--config <file>', "a YAML file of options: Toil's option names as keys, e.g. 'retryCount: 3'; flags win").env(CONFIG_ENV),
  );
  for (const [key, decl] of optionList()) {
    if (decl.envOnly) continue;
    cmd.addOption(flagFor(key, decl));
    // Added after the positive flag, so that commander gives the option no default of its own.
    if (decl.negation) cmd.addOption(new Option(`--no-${key}`, decl.negation));
    for (const s of decl.shortcuts ?? []) cmd.option(`--${s.flag}`, s.help);
  }
  return cmd;
}

/** The "Environment:" part of `toil run --help`. */
export function environmentHelp(): string {
  const rows: Array<[string, string]> = [[CONFIG_ENV, 'default for --config']];
  for (const [key, decl] of optionList()) {
    if (decl.env) rows.push([decl.env, decl.envOnly ? decl.help : `default for --${key}`]);
  }
  rows.push(['AWS_REGION, AWS_ENDPOINT_URL_S3, AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE', 'as for the AWS SDK']);
  const width = Math.max(...rows.slice(0, -1).map(([name]) => name.length)) + 3;
  return rows.map(([name, what]) => `  ${name}${' '.repeat(Math.max(3, width - name.length))}${what}`).join('\n');
}

/** The option values the flags give (a shortcut such as --logDebug stands for its option). */
export function flagValues(o: RunOpts): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, decl] of optionList()) {
    if (decl.envOnly) continue;
    const shortcut = decl.shortcuts?.findLast((s) => o[s.flag] === true);
    const v = shortcut ? shortcut.value : o[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * The options the run is given — flags over the config file (--config or TOIL_CONFIG) over the
 * environment — checked, defaults left out (a restart fills the gaps from the first run).
 */
export async function givenOptions(jobStore: string, o: RunOpts): Promise<Record<string, unknown>> {
  const file = typeof o['config'] === 'string' && o['config'] !== '' ? o['config'] : undefined;
  const layers: ConfigLayer[] = [environmentLayer()];
  if (file) layers.push(await readConfigFile(file));
  layers.push(optionLayer({ ...flagValues(o), jobStore }));
  resolveConfig(layers);
  return givenValues(layers);
}
