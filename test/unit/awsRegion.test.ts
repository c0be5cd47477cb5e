/**
 * The region of an AWS job store: one AWS has, as the SDK's own partition data lists them, unless
 * an S3 endpoint of its own is configured (then any name, as S3-compatible stores need). A typo
 * is refused before anything is made, with the nearest real region.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { awsRegions } from '../../src/jobstore/aws/awsConfig.js';
import { parseLocator } from '../../src/jobstore/locator.js';
import { toil } from '../helpers/run.js';

let home: string;
/** An environment with no endpoint anywhere: no variables, and an empty home (no ~/.aws). */
const noEndpoint = (): NodeJS.ProcessEnv => ({ HOME: home });

beforeAll(async () => {
  home = await mkdtemp(path.join(os.tmpdir(), 'toil-region-'));
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('AWS regions', () => {
  it("come from the SDK's partition data: every partition's regions, no pseudo-regions", () => {
    const regions = awsRegions();
    expect(regions).not.toBeNull();
    expect(regions).toEqual(expect.arrayContaining(['us-east-1', 'us-west-2', 'eu-central-1', 'cn-north-1', 'us-gov-west-1']));
    expect(regions).not.toContain('aws-global');
    expect(regions).not.toContain('us-wset-2');
  });

  it.each(['us-west-2', 'ap-southeast-2', 'us-gov-east-1', 'cn-northwest-1'])('%s is taken', (region) => {
    expect(parseLocator(`aws:${region}:demouser-store`, noEndpoint())).toMatchObject({ kind: 'aws', region });
  });

  it.each([
    ['us-wset-2', 'us-west-2'],
    ['eu-west1', 'eu-west-1'],
    ['ap-southest-1', 'ap-southeast-1'],
    ['us-east-7', 'us-east-1'],
  ])('a typo, %s, is refused naming the nearest real region, %s', (typo, real) => {
    const run = () => parseLocator(`aws:${typo}:demouser-store`, noEndpoint());
    expect(run).toThrow(
      `invalid AWS region '${typo}' in job store locator 'aws:${typo}:demouser-store': AWS has no such region (did you mean '${real}'?)`,
    );
    expect(run).toThrow(/set AWS_ENDPOINT_URL_S3/);
  });

  it('any region is taken when an S3 endpoint is configured: by variable, or in the profile', async () => {
    expect(parseLocator('aws:us-wset-2:demouser-store', { ...noEndpoint(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' })).toMatchObject({
      region: 'us-wset-2',
    });
    expect(parseLocator('aws:garage:demouser-store', { ...noEndpoint(), AWS_ENDPOINT_URL: 'https://s3.example.org' })).toMatchObject({
      region: 'garage',
    });
    const credentials = path.join(home, 'credentials');
    await writeFile(credentials, '[default]\naws_access_key_id = A\naws_secret_access_key = B\nendpoint_url = http://127.0.0.1:4568\n');
    expect(parseLocator('aws:local:demouser-store', { ...noEndpoint(), AWS_SHARED_CREDENTIALS_FILE: credentials })).toMatchObject({
      region: 'local',
    });
    // a name that cannot be a region is refused even so
    expect(() => parseLocator('aws:us west:demouser-store', { ...noEndpoint(), AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000' })).toThrow(
      /invalid AWS region 'us west'/,
    );
  });

  it('toil run refuses a mistyped region with exit 2 and one line, before anything is made', async () => {
    const env = { HOME: home, AWS_ENDPOINT_URL_S3: '', AWS_ENDPOINT_URL: '', AWS_SHARED_CREDENTIALS_FILE: '', AWS_CONFIG_FILE: '' };
    const r = await toil(['run', 'examples/helloworld.ts', 'aws:us-wset-2:demouser-toil-test-jobstore'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^toil: invalid AWS region 'us-wset-2' .*did you mean 'us-west-2'\?/),
    ]);
  }, 60_000);
});
