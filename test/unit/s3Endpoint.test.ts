/** Where the AWS job store finds its S3 endpoint: variables first, then the profile's endpoint_url. */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { s3SettingsFromEnv } from '../../src/jobstore/aws/s3Client.js';

function withAwsDir(files: Record<string, string>, fn: (dir: string) => void): void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'toil-aws-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CREDS =
  '[default]\naws_access_key_id = A\naws_secret_access_key = B\nendpoint_url = http://127.0.0.1:4568\n\n[other]\nendpoint_url = https://s3.other.example\n';

describe('S3 endpoint', () => {
  it('is AWS when nothing names another', () => {
    withAwsDir({}, (dir) => {
      const s = s3SettingsFromEnv('us-west-2', { HOME: dir });
      expect(s.endpoint).toBeUndefined();
      expect(s.forcePathStyle).toBe(false);
    });
  });

  it('comes from the credentials file of the profile in use (a mounted s3-credentials secret)', () => {
    withAwsDir({ credentials: CREDS }, (dir) => {
      const file = path.join(dir, 'credentials');
      expect(s3SettingsFromEnv('us-west-2', { AWS_SHARED_CREDENTIALS_FILE: file, HOME: dir })).toMatchObject({
        endpoint: 'http://127.0.0.1:4568',
        forcePathStyle: true,
      });
      expect(s3SettingsFromEnv('us-west-2', { AWS_SHARED_CREDENTIALS_FILE: file, AWS_PROFILE: 'other', HOME: dir }).endpoint).toBe(
        'https://s3.other.example',
      );
      expect(
        s3SettingsFromEnv('us-west-2', { AWS_SHARED_CREDENTIALS_FILE: file, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true', HOME: dir })
          .endpoint,
      ).toBeUndefined();
    });
  });

  it('prefers the config file to the credentials file, and the variables to both', () => {
    withAwsDir({ credentials: CREDS, config: '[profile other]\nendpoint_url = http://config.example:9000\n' }, (dir) => {
      const env = {
        HOME: dir,
        AWS_PROFILE: 'other',
        AWS_CONFIG_FILE: path.join(dir, 'config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials'),
      };
      expect(s3SettingsFromEnv('us-west-2', env).endpoint).toBe('http://config.example:9000');
      expect(s3SettingsFromEnv('us-west-2', { ...env, AWS_ENDPOINT_URL_S3: 'http://env.example' }).endpoint).toBe('http://env.example');
    });
  });

  it('names where a bad endpoint came from', () => {
    withAwsDir({ credentials: '[default]\nendpoint_url = ftp://nope\n' }, (dir) => {
      expect(() => s3SettingsFromEnv('us-west-2', { HOME: dir, AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials') })).toThrow(
        "endpoint_url of AWS profile 'default' must be an http(s) URL, not 'ftp://nope'",
      );
      expect(() => s3SettingsFromEnv('us-west-2', { HOME: dir, AWS_ENDPOINT_URL_S3: 'not a url' })).toThrow(
        "AWS_ENDPOINT_URL_S3 is not a URL: 'not a url'",
      );
    });
  });
});
