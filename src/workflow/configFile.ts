/**
 * Config files (`toil run --config FILE`, or `TOIL_CONFIG`): a YAML mapping whose keys are
 * Toil's option names (`retryCount: 3`; `--retryCount: 3` is accepted too) and whose values are
 * validated exactly as flags are. On Kubernetes this is how a ConfigMap mounted into the leader
 * pod sets options. An empty file sets nothing; a key with no value (`~`) is unset.
 */
import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { UsageError } from '../errors.js';
import { didYouMean } from '../nearest.js';
import type { ConfigLayer } from './config.js';
import { optionList, type OptionDecl } from './options.js';

/** Reads and checks a config file; problems are UsageErrors naming the file. */
export async function readConfigFile(file: string): Promise<ConfigLayer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read config file ${file}: ${readProblem(e)}`);
  }
  return configFileLayer(file, text);
}

function readProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return (e as Error).message;
}

/** The option values of a config file's text. */
export function configFileLayer(file: string, text: string): ConfigLayer {
  const doc = parseDocument(text);
  const problem = doc.errors[0];
  if (problem) throw new UsageError(`${file}: invalid YAML: ${problem.message.split('\n')[0]!.replace(/:$/, '')}`);
  const top: unknown = doc.toJS();
  if (top === null || top === undefined) return { values: {}, name: (k) => `${file}: ${k}` };
  if (typeof top !== 'object' || Array.isArray(top)) {
    throw new UsageError(
      `${file}: expected a mapping of option names to values (e.g. 'retryCount: 3'), got ${Array.isArray(top) ? 'a list' : `'${String(top)}'`}`,
    );
  }
  const values: Record<string, unknown> = {};
  const written: Record<string, string> = {};
  for (const [raw, value] of Object.entries(top)) {
    const key = fileKey(file, raw);
    if (written[key] !== undefined) throw new UsageError(`${file}: ${key} is given twice (as '${written[key]}' and '${raw}')`);
    written[key] = raw;
    if (value === null) continue;
    if (typeof value === 'object') throw new UsageError(`${file}: ${raw}: expected a single value, not a list or mapping`);
    // As text, exactly as the flag would be: `kubernetesOwner: 1234` is a name, `retryCount: 3` a count.
    values[key] = String(value);
  }
  return { values, name: (k) => `${file}: ${written[k] ?? k}` };
}

const FILE_OPTIONS: ReadonlyMap<string, OptionDecl> = new Map(optionList().filter(([, d]) => !d.envOnly));

/** The option a file's key names (without a leading `--`); anything else is a UsageError. */
function fileKey(file: string, raw: string): string {
  const key = raw.replace(/^--/, '');
  if (FILE_OPTIONS.has(key)) return key;
  if (key === 'jobStore') throw new UsageError(`${file}: jobStore cannot be set in a config file: give the job store on the command line`);
  for (const [name, decl] of optionList()) {
    if (decl.envOnly && name === key) throw new UsageError(`${file}: ${raw} is set by the environment variable ${decl.env} only`);
    const s = decl.shortcuts?.find((sc) => sc.flag === key);
    if (s) throw new UsageError(`${file}: ${raw} is a command-line shortcut: write '${name}: ${s.value}'`);
  }
  const near = didYouMean(key, [...FILE_OPTIONS.keys()]);
  throw new UsageError(`${file}: unknown option '${raw}'${near ? ` (did you mean ${near}?)` : ''}`);
}
