/**
 * The SimpleDB client against the test SimpleDB server (@toil-ts/testbed/simpledb): every
 * operation, values kept exactly (base64-encoded ones too), Expected conditions as conflicts,
 * paging, eventual consistency, retries through 503s, throttling and cut connections, errors
 * mapped into the project's hierarchy, and credentials and endpoints as the S3 client gets them.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startSimpleDbServer, useTestSimpleDbEnv, type SimpleDbServer } from '@toil-ts/testbed/simpledb';
import { ConflictError, JobStoreError, NotFoundError, ToilError, TransientError, UsageError } from '../../src/errors.js';
import { withRequestSignal } from '../../src/jobstore/requestSignal.js';
import { SimpleDbClient, simpleDbEndpoint, type SdbAttribute } from '../../src/jobstore/aws/simpledb/client.js';

const KEYS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let server: SimpleDbServer;
let client: SimpleDbClient;
let n = 0;
const freshDomain = (): string => `test-${process.pid}-${++n}`;

beforeAll(async () => {
  server = await startSimpleDbServer({ eventualConsistencyMs: 0 });
  client = new SimpleDbClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: async () => KEYS });
});
afterAll(async () => {
  await server.stop();
});

async function caught(p: Promise<unknown>): Promise<ToilError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ToilError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const sorted = (attrs: SdbAttribute[]): SdbAttribute[] =>
  [...attrs].sort((a, b) => (a.name + '\0' + a.value < b.name + '\0' + b.value ? -1 : 1));

describe('SimpleDbClient operations', () => {
  it('creates, lists (with paging), describes and deletes domains', async () => {
    const names = [freshDomain(), freshDomain(), freshDomain()];
    for (const d of names) await client.createDomain(d);
    await client.createDomain(names[0]!); // idempotent, as on AWS
    const seen: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await client.listDomains({ maxNumberOfDomains: 2, ...(nextToken ? { nextToken } : {}) });
      expect(page.domains.length).toBeLessThanOrEqual(2);
      seen.push(...page.domains);
      nextToken = page.nextToken;
    } while (nextToken);
    expect(seen).toEqual(expect.arrayContaining(names));
    await client.putAttributes({
      domain: names[0]!,
      item: 'i',
      attributes: [
        { name: 'ab', value: 'xyz' },
        { name: 'ab', value: 'q' },
      ],
    });
    const md = await client.domainMetadata(names[0]!);
    expect(md).toMatchObject({
      itemCount: 1,
      itemNamesSizeBytes: 1,
      attributeNameCount: 1,
      attributeNamesSizeBytes: 2,
      attributeValueCount: 2,
      attributeValuesSizeBytes: 4,
    });
    expect(md.timestamp).toBeGreaterThan(1.7e9);
    for (const d of names) await client.deleteDomain(d);
    expect((await client.listDomains()).domains).not.toContain(names[0]);
  });

  it('puts, replaces, reads and deletes attributes, keeping values exactly', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    const odd = [' padded ', '0014.99', 'a&b<c>"d\'', '', 'line\r\nbreak\ttab', 'ctrl\u0001\u0008char', 'ünïcødé ☃ 😀'];
    await client.putAttributes({ domain, item: 'it em/1', attributes: odd.map((value) => ({ name: 'v', value })) });
    await client.putAttributes({ domain, item: 'it em/1', attributes: [{ name: 'ctrl\u0002name', value: 'x' }] });
    const got = await client.getAttributes({ domain, item: 'it em/1', consistentRead: true });
    expect(sorted(got)).toEqual(sorted([...odd.map((value) => ({ name: 'v', value })), { name: 'ctrl\u0002name', value: 'x' }]));

    await client.putAttributes({ domain, item: 'it em/1', attributes: [{ name: 'v', value: 'only', replace: true }] });
    expect(await client.getAttributes({ domain, item: 'it em/1', attributeNames: ['v'], consistentRead: true })).toEqual([
      { name: 'v', value: 'only' },
    ]);

    await client.putAttributes({
      domain,
      item: 'x',
      attributes: [
        { name: 'a', value: '1' },
        { name: 'a', value: '2' },
        { name: 'b', value: '3' },
      ],
    });
    await client.deleteAttributes({ domain, item: 'x', attributes: [{ name: 'a', value: '1' }] });
    expect(sorted(await client.getAttributes({ domain, item: 'x', consistentRead: true }))).toEqual([
      { name: 'a', value: '2' },
      { name: 'b', value: '3' },
    ]);
    await client.deleteAttributes({ domain, item: 'x', attributes: [{ name: 'a' }] });
    expect(await client.getAttributes({ domain, item: 'x', consistentRead: true })).toEqual([{ name: 'b', value: '3' }]);
    await client.deleteAttributes({ domain, item: 'x' });
    expect(await client.getAttributes({ domain, item: 'x', consistentRead: true })).toEqual([]);
  });

  it('writes and deletes in batches of up to 25 items; more is a terminal error with the AWS code', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    const items = Array.from({ length: 25 }, (_, i) => ({
      name: `item${String(i).padStart(2, '0')}`,
      attributes: [{ name: 'n', value: String(i) }],
    }));
    await client.batchPutAttributes({ domain, items });
    expect((await client.domainMetadata(domain)).itemCount).toBe(25);
    await client.batchDeleteAttributes({ domain, items: items.slice(0, 20).map((i) => ({ name: i.name })) });
    expect((await client.domainMetadata(domain)).itemCount).toBe(5);

    const e = await caught(
      client.batchPutAttributes({ domain, items: [...items, { name: 'one-more', attributes: [{ name: 'n', value: 'x' }] }] }),
    );
    expect(e).toBeInstanceOf(JobStoreError);
    expect(e.code).toBe('JOBSTORE');
    expect(e.retryable).toBe(false);
    expect(e.context['awsCode']).toBe('NumberSubmittedItemsExceeded');
    const big = await caught(client.putAttributes({ domain, item: 'i', attributes: [{ name: 'n', value: 'é'.repeat(513) }] }));
    expect(big.context['awsCode']).toBe('InvalidParameterValue');
  });

  it('selects with where, like, itemName() and limit, following NextToken across pages', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    for (let b = 0; b < 10; b++) {
      const items = Array.from({ length: 25 }, (_, i) => ({
        name: `job-${b * 25 + i}`,
        attributes: [{ name: 'kind', value: (b * 25 + i) % 2 ? 'odd' : 'even' }],
      }));
      await client.batchPutAttributes({ domain, items });
    }
    server.resetCounts();
    const all: string[] = [];
    for await (const item of client.selectAll({ expression: `select * from \`${domain}\``, consistentRead: true })) all.push(item.name);
    expect(new Set(all).size).toBe(250);
    expect(server.requestCounts()['Select']).toBe(3); // 100 items per page by default

    const odd: string[] = [];
    for await (const item of client.selectAll({
      expression: `select itemName() from \`${domain}\` where kind = 'odd' and itemName() like 'job-1%' limit 7`,
      consistentRead: true,
    })) {
      expect(item.attributes).toEqual([]);
      odd.push(item.name);
    }
    const expected = Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 2 === 1 && String(i).startsWith('1'));
    expect(odd.sort()).toEqual(expected.map((i) => `job-${i}`).sort());

    server.setFaults({ emptySelectRate: 0.5 }); // AWS's answer to a Select that runs out of time: an empty page and a NextToken
    try {
      const again: string[] = [];
      for await (const item of client.selectAll({ expression: `select itemName() from \`${domain}\``, consistentRead: true }))
        again.push(item.name);
      expect(again.sort()).toEqual([...all].sort());
    } finally {
      server.setFaults({});
    }

    const bad = await caught(client.select({ expression: `select * from \`${domain}\` where kind = odd`, consistentRead: true }));
    expect(bad.context['awsCode']).toBe('InvalidQueryExpression');
  });
});

describe('SimpleDbClient errors', () => {
  it('Expected conditions that do not hold are conflicts', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    const create = {
      domain,
      item: 'job',
      attributes: [{ name: 'version', value: '1', replace: true }],
      expected: { name: 'version', exists: false as const },
    };
    await client.putAttributes(create);
    const again = await caught(client.putAttributes(create));
    expect(again).toBeInstanceOf(ConflictError);
    expect(again.context['awsCode']).toBe('ConditionalCheckFailed');

    await client.putAttributes({
      domain,
      item: 'job',
      attributes: [{ name: 'version', value: '2', replace: true }],
      expected: { name: 'version', value: '1' },
    });
    const stale = await caught(
      client.putAttributes({
        domain,
        item: 'job',
        attributes: [{ name: 'version', value: '2', replace: true }],
        expected: { name: 'version', value: '1' },
      }),
    );
    expect(stale).toBeInstanceOf(ConflictError);
    expect(stale.context['awsCode']).toBe('ConditionalCheckFailed');
    const missing = await caught(
      client.putAttributes({
        domain,
        item: 'other',
        attributes: [{ name: 'version', value: '1' }],
        expected: { name: 'version', value: '0' },
      }),
    );
    expect(missing).toBeInstanceOf(ConflictError);
    expect(missing.context['awsCode']).toBe('AttributeDoesNotExist');
    const staleDelete = await caught(client.deleteAttributes({ domain, item: 'job', expected: { name: 'version', value: '1' } }));
    expect(staleDelete).toBeInstanceOf(ConflictError);
    await client.deleteAttributes({ domain, item: 'job', expected: { name: 'version', value: '2' } });
    expect(await client.getAttributes({ domain, item: 'job', consistentRead: true })).toEqual([]);
  });

  it('a missing domain is NotFoundError', async () => {
    const e = await caught(client.getAttributes({ domain: 'no-such-domain', item: 'x' }));
    expect(e).toBeInstanceOf(NotFoundError);
    expect(e.context['awsCode']).toBe('NoSuchDomain');
  });

  it('a wrong secret or unknown key is terminal, and no secret or signature shows in the error', async () => {
    const wrong = new SimpleDbClient({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: async () => ({ accessKeyId: 'S3RVER', secretAccessKey: 'not-the-secret' }),
    });
    const e = await caught(wrong.listDomains());
    expect(e.context['awsCode']).toBe('SignatureDoesNotMatch');
    expect(e.retryable).toBe(false);
    const text = `${e.message} ${JSON.stringify(e.context)}`;
    expect(text).not.toMatch(/not-the-secret|Signature=|AWSAccessKeyId/);
    const unknown = new SimpleDbClient({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: async () => ({ accessKeyId: 'NOPE', secretAccessKey: 'x' }),
    });
    expect((await caught(unknown.listDomains())).context['awsCode']).toBe('AuthFailure');
  });

  it('sends the session token as SecurityToken', async () => {
    const s = await startSimpleDbServer({
      credentials: [{ accessKeyId: 'TMPKEY', secretAccessKey: 'tmpsecret', sessionToken: 'the/session+token=' }],
    });
    try {
      const withToken = new SimpleDbClient({
        region: 'us-east-1',
        endpoint: s.endpoint,
        credentials: async () => ({ accessKeyId: 'TMPKEY', secretAccessKey: 'tmpsecret', sessionToken: 'the/session+token=' }),
      });
      await withToken.createDomain('tokens');
      expect((await withToken.listDomains()).domains).toEqual(['tokens']);
      const without = new SimpleDbClient({
        region: 'us-east-1',
        endpoint: s.endpoint,
        credentials: async () => ({ accessKeyId: 'TMPKEY', secretAccessKey: 'tmpsecret' }),
      });
      expect((await caught(without.listDomains())).context['awsCode']).toBe('InvalidClientTokenId');
    } finally {
      await s.stop();
    }
  });
});

describe('SimpleDbClient retries', () => {
  it('completes every write through 503s, throttling and cut connections', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    const patient = new SimpleDbClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: async () => KEYS, maxAttempts: 30 });
    server.resetCounts();
    server.setFaults({ errorRate: 0.1, throttleRate: 0.05, cutRate: 0.15 });
    try {
      for (let i = 0; i < 60; i++) await patient.putAttributes({ domain, item: `i${i}`, attributes: [{ name: 'n', value: String(i) }] });
    } finally {
      server.setFaults({});
    }
    const counts = server.requestCounts();
    expect(counts['fault:error']).toBeGreaterThan(0);
    expect(counts['fault:cut']).toBeGreaterThan(0);
    expect(counts['PutAttributes']).toBeGreaterThan(60);
    for (let i = 0; i < 60; i++)
      expect(await client.getAttributes({ domain, item: `i${i}`, consistentRead: true })).toEqual([{ name: 'n', value: String(i) }]);
  }, 120_000);

  it('gives up after maxAttempts with a TransientError', async () => {
    const three = new SimpleDbClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: async () => KEYS, maxAttempts: 3 });
    server.resetCounts();
    server.setFaults({ errorRate: 1 });
    try {
      const e = await caught(three.listDomains());
      expect(e).toBeInstanceOf(TransientError);
      expect(e.retryable).toBe(true);
      expect(e.context['awsCode']).toBe('ServiceUnavailable');
    } finally {
      server.setFaults({});
    }
    expect(server.requestCounts()['ListDomains']).toBe(3);
  });

  it('stops trying once the caller’s request signal aborts, saying the call was abandoned', async () => {
    server.resetCounts();
    server.setFaults({ errorRate: 1 });
    const t = performance.now();
    try {
      const e = await caught(withRequestSignal(AbortSignal.timeout(1000), () => client.listDomains()));
      expect(e).toMatchObject({ code: 'TRANSIENT', context: { abandoned: true } });
      expect(e.message).toMatch(/was abandoned \(its time ran out\)/);
    } finally {
      server.setFaults({});
    }
    // The default is 10 tries with pauses of up to 5 s between them.
    expect(performance.now() - t).toBeLessThan(3000);
    expect(server.requestCounts()['ListDomains']).toBeLessThan(10);
  });

  it('a conditional write retried after a lost answer says the first attempt may have been applied', async () => {
    const domain = freshDomain();
    await client.createDomain(domain);
    const patient = new SimpleDbClient({ region: 'us-east-1', endpoint: server.endpoint, credentials: async () => KEYS, maxAttempts: 50 });
    server.setFaults({ cutRate: 0.5 });
    const flagged: boolean[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const put = patient.putAttributes({
          domain,
          item: `c${i}`,
          attributes: [{ name: 'v', value: '1' }],
          expected: { name: 'v', exists: false },
        });
        const e = await put.then(
          () => undefined,
          (err: unknown) => err,
        );
        if (e !== undefined) {
          expect(e).toBeInstanceOf(ConflictError);
          flagged.push((e as ConflictError).context['afterUncertainAttempt'] === true);
        }
      }
    } finally {
      server.setFaults({});
    }
    // with half the connections cut (half of those after the write), some first attempts were applied
    expect(flagged.length).toBeGreaterThan(0);
    expect(flagged.every((f) => f)).toBe(true);
  });
});

describe('SimpleDbClient clock skew', () => {
  it("signs again with the server's clock when a request is refused as expired", async () => {
    const skewed = new SimpleDbClient({
      region: 'us-east-1',
      endpoint: server.endpoint,
      credentials: async () => KEYS,
      systemClockOffsetMs: -20 * 60_000,
    });
    server.resetCounts();
    await skewed.listDomains();
    expect(server.requestCounts()['ListDomains']).toBe(2); // refused once, then signed with the corrected clock
    await skewed.listDomains();
    expect(server.requestCounts()['ListDomains']).toBe(3); // the correction is kept
  });
});

describe('SimpleDbClient answers that are not SimpleDB XML', () => {
  it("retries a proxy's HTML 502, and refuses a malformed 200 without retrying", async () => {
    const answers = [
      { status: 502, body: '<html><body>Bad Gateway</body></html>' },
      { status: 200, body: '<ListDomainsResponse><ListDomainsResult><DomainName>a</DomainName>' },
      { status: 200, body: '<SomethingElseResponse/>' },
    ];
    let served = 0;
    const proxy = createServer((_req, res) => {
      const a = answers[Math.min(served++, answers.length - 1)]!;
      res.writeHead(a.status, { 'content-type': 'text/html' }).end(a.body);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const c = new SimpleDbClient({
        region: 'us-east-1',
        endpoint: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/`,
        credentials: async () => KEYS,
      });
      const e = await caught(c.listDomains());
      expect(served).toBe(2); // the 502 once more, then the truncated document
      expect(e).toBeInstanceOf(JobStoreError);
      expect(e.retryable).toBe(false);
      expect(e.message).toMatch(/ListDomains: malformed answer/);
      const other = await caught(c.createDomain('x'));
      expect(other.message).toMatch(/CreateDomain: malformed answer/);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});

describe('SimpleDbClient consistency', () => {
  it('reads without ConsistentRead may see the previous value; consistent reads never do', async () => {
    const s = await startSimpleDbServer(); // the default: a 1 s window, like AWS
    try {
      const c = new SimpleDbClient({ region: 'us-east-1', endpoint: s.endpoint, credentials: async () => KEYS });
      await c.createDomain('eventual');
      await c.putAttributes({ domain: 'eventual', item: 'i', attributes: [{ name: 'v', value: '1' }] });
      expect(await c.getAttributes({ domain: 'eventual', item: 'i', consistentRead: true })).toEqual([{ name: 'v', value: '1' }]);
      expect(await c.getAttributes({ domain: 'eventual', item: 'i' })).toEqual([]);
      const deadline = Date.now() + 30_000;
      let seen: SdbAttribute[] = [];
      while (seen.length === 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await c.getAttributes({ domain: 'eventual', item: 'i' });
      }
      expect(seen).toEqual([{ name: 'v', value: '1' }]);
    } finally {
      await s.stop();
    }
  });
});

describe('SimpleDbClient configuration', () => {
  it('uses AWS regional endpoints, and refuses regions without SimpleDB unless an endpoint is set', () => {
    expect(simpleDbEndpoint('us-east-1', undefined, {}).href).toBe('https://sdb.amazonaws.com/');
    expect(simpleDbEndpoint('eu-west-1', undefined, {}).href).toBe('https://sdb.eu-west-1.amazonaws.com/');
    expect(() => simpleDbEndpoint('eu-central-1', undefined, {})).toThrow(UsageError);
    expect(simpleDbEndpoint('eu-central-1', undefined, { AWS_ENDPOINT_URL_SIMPLEDB: 'http://127.0.0.1:1/' }).href).toBe(
      'http://127.0.0.1:1/',
    );
    expect(() => simpleDbEndpoint('us-east-1', undefined, { AWS_ENDPOINT_URL_SIMPLEDB: 'ftp://x' })).toThrow(UsageError);
  });

  it('takes endpoint and credentials from the environment, and from a profile as the S3 client does', async () => {
    const restore = useTestSimpleDbEnv(server);
    try {
      const fromEnv = new SimpleDbClient({ region: 'us-east-1' });
      await fromEnv.createDomain('from-env');
      expect((await fromEnv.listDomains()).domains).toContain('from-env');
    } finally {
      restore();
    }
    const home = await mkdtemp(path.join(os.tmpdir(), 'toil-sdb-home-'));
    const saved = { ...process.env };
    try {
      await writeFile(
        path.join(home, 'credentials'),
        `[sdbtest]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\nendpoint_url = ${server.endpoint}\n`,
      );
      for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_SIMPLEDB'])
        delete process.env[k];
      Object.assign(process.env, {
        AWS_PROFILE: 'sdbtest',
        AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
        AWS_CONFIG_FILE: path.join(home, 'config'),
        AWS_EC2_METADATA_DISABLED: 'true',
      });
      const fromProfile = new SimpleDbClient({ region: 'us-east-1' });
      expect((await fromProfile.listDomains()).domains).toContain('from-env');
    } finally {
      process.env = saved;
      await rm(home, { recursive: true, force: true });
    }
  });
});
