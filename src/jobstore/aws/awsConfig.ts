/**
 * Where an AWS service's endpoint comes from, as the AWS CLI and SDKs read it — shared by the S3
 * client and the SimpleDB client:
 *
 * 1. the service's own variable (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SIMPLEDB`), then
 *    `AWS_ENDPOINT_URL`;
 * 2. unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, the `endpoint_url` of the profile in use
 *    (`AWS_PROFILE` or default) in the config file or the credentials file — so that a
 *    `s3-credentials` secret can carry the endpoint of a compatible store;
 * 3. otherwise none: the caller uses AWS's own.
 *
 * A configured endpoint must be an http(s) URL, else a UsageError naming where it was found.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../errors.js';

/** The `[name]` or `[profile name]` section of an ini file, as key → value. */
function iniSection(file: string, sectionNames: string[]): Record<string, string> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let current: Record<string, string> | undefined;
  let found: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+|\s+$/g, '');
    const header = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (header) {
      current = sectionNames.includes(header[1]!) ? (found = found ?? {}) : undefined;
      continue;
    }
    const kv = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(line);
    if (current && kv && !/^\s/.test(raw)) current[kv[1]!.toLowerCase()] = kv[2]!;
  }
  return found;
}

/** `endpoint_url` of the profile in use (AWS_PROFILE or default), from the config or credentials file. */
function profileEndpoint(env: NodeJS.ProcessEnv): string | undefined {
  const profile = env['AWS_PROFILE'] || 'default';
  const home = env['HOME'] || os.homedir();
  const config = env['AWS_CONFIG_FILE'] || path.join(home, '.aws', 'config');
  const credentials = env['AWS_SHARED_CREDENTIALS_FILE'] || path.join(home, '.aws', 'credentials');
  const fromConfig = iniSection(config, profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`]);
  return fromConfig?.['endpoint_url'] || iniSection(credentials, [profile])?.['endpoint_url'] || undefined;
}

function findEndpoint(env: NodeJS.ProcessEnv, serviceVar: string): { url: string; source: string } | undefined {
  for (const name of [serviceVar, 'AWS_ENDPOINT_URL']) {
    const v = env[name];
    if (v) return { url: v, source: name };
  }
  if (env['AWS_IGNORE_CONFIGURED_ENDPOINT_URLS'] === 'true') return undefined;
  const fromProfile = profileEndpoint(env);
  return fromProfile ? { url: fromProfile, source: `endpoint_url of AWS profile '${env['AWS_PROFILE'] || 'default'}'` } : undefined;
}

/**
 * The endpoint configured for a service (`serviceVar` is its own variable, e.g.
 * `AWS_ENDPOINT_URL_S3`), or undefined for AWS's own.
 */
export function configuredEndpoint(env: NodeJS.ProcessEnv, serviceVar: string): string | undefined {
  const configured = findEndpoint(env, serviceVar);
  if (configured === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(configured.url);
  } catch {
    throw new UsageError(`${configured.source} is not a URL: '${configured.url}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`${configured.source} must be an http(s) URL, not '${configured.url}'`);
  return configured.url;
}
