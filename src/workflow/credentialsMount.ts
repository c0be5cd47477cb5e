/**
 * The leader's own AWS credentials, when they come from a mounted secret: the manifests mount
 * the `s3-credentials` secret (TOIL_AWS_SECRET_NAME) as an optional volume and point
 * AWS_SHARED_CREDENTIALS_FILE into it, so that a leader applied before its secret exists starts
 * and says, in `kubectl logs`, what is missing and how to make it — instead of a pod that stays
 * ContainerCreating and a `kubectl logs` that only says it is waiting to start.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';

/** Where a pod finds its namespace. */
const NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function namespaceOf(): string | undefined {
  try {
    return readFileSync(NAMESPACE_FILE, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Throws a UsageError (exit 2, before anything is created) when an AWS job store's leader is
 * told its credentials come from a secret (TOIL_AWS_SECRET_NAME and AWS_SHARED_CREDENTIALS_FILE
 * both set) and the file is not there: the secret is missing, or lacks the `credentials` key.
 */
export function checkCredentialsMount(jobStore: string, env: NodeJS.ProcessEnv = process.env): void {
  const secret = env['TOIL_AWS_SECRET_NAME'];
  const file = env['AWS_SHARED_CREDENTIALS_FILE'];
  if (!jobStore.startsWith('aws:') || !secret || !file || existsSync(file)) return;
  const ns = namespaceOf();
  const where = ns ? ` in namespace '${ns}'` : '';
  const key = path.basename(file);
  throw new UsageError(
    `no AWS credentials at ${file}: the secret '${secret}' (TOIL_AWS_SECRET_NAME) is missing${where}, or has no key '${key}'. ` +
      `Make it from your AWS files: kubectl create secret generic ${secret}${ns ? ` -n ${ns}` : ''} --from-file ${key}=$HOME/.aws/credentials --from-file config=$HOME/.aws/config ` +
      `(or, with workload identity, remove TOIL_AWS_SECRET_NAME and AWS_SHARED_CREDENTIALS_FILE from the leader)`,
  );
}
