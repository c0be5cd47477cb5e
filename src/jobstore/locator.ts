import path from 'node:path';
import { UsageError } from '../errors.js';
import { regionProblem } from './aws/awsConfig.js';

export type Locator = { kind: 'file'; path: string; text: string } | { kind: 'aws'; region: string; name: string; text: string };

/** S3 bucket names are 3-63 characters; `<name>--toil` adds 6. */
const AWS_NAME = /^[a-z0-9][a-z0-9-]{1,55}[a-z0-9]$/;

/**
 * Parses a job store locator: `file:<path>` or a bare path (the file job store), or
 * `aws:<region>:<name>` (the AWS job store, bucket `<name>--toil`). Throws a UsageError naming
 * what is wrong. The region must be one AWS has unless `env` configures an S3 endpoint of its own
 * (awsConfig.ts).
 */
export function parseLocator(text: string, env: NodeJS.ProcessEnv = process.env): Locator {
  if (typeof text !== 'string' || text.trim() === '') throw new UsageError('the job store locator is empty');
  if (text.startsWith('aws:')) {
    const parts = text.split(':');
    if (parts.length !== 3) throw new UsageError(`invalid AWS job store locator '${text}': expected aws:<region>:<name>`);
    const [, region, name] = parts as [string, string, string];
    const problem = regionProblem(region, env);
    if (problem) throw new UsageError(`invalid AWS region '${region}' in job store locator '${text}': ${problem}`);
    if (!AWS_NAME.test(name) || name.includes('--') || name.includes('..')) {
      throw new UsageError(
        `invalid AWS job store name '${name}' in '${text}': use 3-57 lowercase letters, digits and single hyphens, starting and ending with a letter or digit`,
      );
    }
    return { kind: 'aws', region, name, text };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(text) && !text.startsWith('file:') && !/^[A-Za-z]:[\\/]/.test(text)) {
    const scheme = text.slice(0, text.indexOf(':'));
    throw new UsageError(`unknown job store type '${scheme}' in '${text}': use a path, file:<path> or aws:<region>:<name>`);
  }
  let p = text.startsWith('file://') ? new URL(text).pathname : text.startsWith('file:') ? text.slice(5) : text;
  if (p === '') throw new UsageError(`invalid file job store locator '${text}': no path`);
  p = path.resolve(p);
  return { kind: 'file', path: p, text: `file:${p}` };
}
