/**
 * Opening the job store a run's configuration names: the combinations that cannot work (a file
 * store for worker pods, SimpleDB metadata for a file store, an SSE key that would not reach the
 * pods, a --workDir that does not exist) are refused first, as bad usage.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { parseLocator } from '../jobstore/locator.js';
import { openJobStore } from '../jobstore/open.js';
import type { JobStore } from '../jobstore/types.js';
import type { ToilConfig } from './config.js';
import { checkCredentialsMount } from './credentialsMount.js';

/** A --workDir for local workers must exist: a typo would otherwise make a new directory somewhere. */
async function checkWorkDir(config: ToilConfig): Promise<void> {
  if (config.workDir === undefined || config.batchSystem !== 'single_machine') return;
  const st = await stat(config.workDir).catch(() => undefined);
  const source = process.env['TOIL_WORKDIR'] === config.workDir ? 'TOIL_WORKDIR' : '--workDir';
  if (!st)
    throw new UsageError(`${source}: no such directory: ${config.workDir} (create it first, or leave it unset for the system temp dir)`);
  if (!st.isDirectory()) throw new UsageError(`${source}: not a directory: ${config.workDir}`);
}

/** Opens the job store the configuration names, refusing combinations that cannot work. */
export async function openStore(config: ToilConfig): Promise<JobStore> {
  await checkWorkDir(config);
  checkCredentialsMount(config.jobStore);
  const locator = parseLocator(config.jobStore);
  if (config.batchSystem === 'kubernetes' && locator.kind === 'file') {
    throw new UsageError(
      `--batchSystem kubernetes needs a job store that worker pods can reach (aws:<region>:<name>), not ${locator.text}`,
    );
  }
  if (config.awsMetadata === 'simpledb' && locator.kind === 'file') {
    const source = process.env['TOIL_AWS_METADATA'] === 'simpledb' ? 'TOIL_AWS_METADATA=simpledb' : '--awsMetadata simpledb';
    throw new UsageError(`${source} is for AWS job stores (aws:<region>:<name>), not the file job store ${locator.text}`);
  }
  if (config.sseKey && config.batchSystem === 'kubernetes') {
    throw new UsageError(
      '--sseKey does not reach worker pods yet: mount the key file in the worker image and set TOIL_S3_SSE_KEY_FILE instead',
    );
  }
  if (config.sseKey) {
    // Local workers inherit the environment: they open the store with the same key.
    process.env['TOIL_S3_SSE_KEY_FILE'] = path.resolve(config.sseKey);
  }
  return openJobStore(locator, {
    ...(config.sseKey ? { sseKeyPath: config.sseKey } : {}),
    ...(config.awsMetadata ? { awsMetadata: config.awsMetadata } : {}),
  });
}
