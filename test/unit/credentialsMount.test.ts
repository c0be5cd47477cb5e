import { describe, expect, it } from '@jest/globals';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../src/errors.js';
import { checkCredentialsMount } from '../../src/workflow/credentialsMount.js';

describe("the leader's credentials from a mounted secret", () => {
  it('a missing credentials file is a usage error naming the secret and the command that makes it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'toil-creds-'));
    const env = { TOIL_AWS_SECRET_NAME: 's3-credentials', AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials') };
    const call = () => checkCredentialsMount('aws:us-west-2:demo', env);
    expect(call).toThrow(UsageError);
    expect(call).toThrow(
      new RegExp(
        `^no AWS credentials at ${dir}/credentials: the secret 's3-credentials' \\(TOIL_AWS_SECRET_NAME\\) is missing.*, or has no key 'credentials'\\. ` +
          'Make it from your AWS files: kubectl create secret generic s3-credentials.* --from-file credentials=\\$HOME/\\.aws/credentials --from-file config=\\$HOME/\\.aws/config',
      ),
    );
    await writeFile(env.AWS_SHARED_CREDENTIALS_FILE, '[default]\n');
    expect(call).not.toThrow();
  });

  it('says nothing for a file job store, or when no secret is named', () => {
    expect(() =>
      checkCredentialsMount('/tmp/store', { TOIL_AWS_SECRET_NAME: 's', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/c' }),
    ).not.toThrow();
    expect(() => checkCredentialsMount('aws:us-west-2:demo', { AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/c' })).not.toThrow();
  });
});
