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
 *
 * And which regions a job store may name: with an endpoint configured (an S3-compatible store),
 * any; otherwise one that AWS has, as the SDK's own partition data lists them (the table its
 * endpoint resolver uses, shipped in `@aws-sdk/core`), so that a typo is refused at once with the
 * nearest real name rather than found late by AWS.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { UsageError } from '../../errors.js';
import { nearest } from '../../nearest.js';

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

/** The partition table in `@aws-sdk/core` (generated from the SDK's partitions.json). */
const PartitionTable = z.object({
  partitions: z.array(z.object({ id: z.string(), regionRegex: z.string(), regions: z.record(z.string(), z.unknown()) })),
});
const PARTITIONS_MODULE = 'dist-es/submodules/client/util-endpoints/lib/aws/partitions.js';

let regions: readonly string[] | null | undefined;

/**
 * The regions AWS has, from the SDK's partition data: the entries of each partition that match
 * that partition's own region pattern (which leaves out pseudo-regions such as `aws-global`).
 * Null when the installed SDK does not ship the table where expected (the check is then skipped).
 */
export function awsRegions(): readonly string[] | null {
  if (regions !== undefined) return regions;
  try {
    // @aws-sdk/core comes with @aws-sdk/client-s3, whose dependency it is
    const s3 = createRequire(import.meta.url).resolve('@aws-sdk/client-s3');
    const core = path.dirname(createRequire(s3).resolve('@aws-sdk/core/package.json'));
    const source = readFileSync(path.join(core, PARTITIONS_MODULE), 'utf8');
    // `export const partitionsInfo = { …JSON… };`
    const table = PartitionTable.parse(JSON.parse(source.slice(source.indexOf('{'), source.lastIndexOf('}') + 1)));
    regions = table.partitions.flatMap((p) => Object.keys(p.regions).filter((r) => new RegExp(p.regionRegex).test(r)));
  } catch {
    regions = null;
  }
  return regions;
}

/** What a region name may hold for an S3-compatible store (it goes into request signatures). */
const ANY_REGION = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Why `region` cannot be a job store's, or undefined when it can. With an S3 endpoint configured
 * (variables or the profile, as {@link configuredEndpoint} reads them) any plain name is taken, as
 * S3-compatible stores need; otherwise it must be a region AWS has, and the nearest one is named.
 */
export function regionProblem(region: string, env: NodeJS.ProcessEnv): string | undefined {
  if (!ANY_REGION.test(region)) return 'a region is letters, digits and hyphens (e.g. us-west-2)';
  if (configuredEndpoint(env, 'AWS_ENDPOINT_URL_S3') !== undefined) return undefined;
  const known = awsRegions();
  if (known === null || known.includes(region)) return undefined;
  const near = nearest(region, known);
  return (
    `AWS has no such region${near ? ` (did you mean '${near.name}'?)` : ''}; ` +
    'for an S3-compatible store set AWS_ENDPOINT_URL_S3 (or endpoint_url in the AWS profile), and any region name is taken'
  );
}
