/**
 * The test SimpleDB server, through raw signed requests (signed here, independently of the
 * server's verifier): authentication, limits and error codes as AWS documents them, Expected,
 * the Select subset and its paging, XML encoding, eventual consistency, faults and counters.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { verifySigV2 } from '../src/simpledb/auth.js';
import { startSimpleDbServer, type SimpleDbServer } from '../src/simpledb/server.js';
import { SdbError } from '../src/simpledb/xml.js';

let sdb: SimpleDbServer;

beforeAll(async () => {
  sdb = await startSimpleDbServer({ eventualConsistencyMs: 0, maxDomains: 20 });
});
afterAll(async () => {
  await sdb?.stop();
});

const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

interface SignOpts {
  method?: 'GET' | 'POST';
  secret?: string;
  keyId?: string;
  now?: Date;
  /** set Expires instead of Timestamp */
  expires?: Date;
  extra?: Record<string, string>;
}

function signed(params: Record<string, string>, o: SignOpts = {}): Record<string, string> {
  const all: Record<string, string> = {
    Version: '2009-04-15',
    AWSAccessKeyId: o.keyId ?? 'S3RVER',
    SignatureVersion: '2',
    SignatureMethod: 'HmacSHA256',
    ...(o.expires ? { Expires: o.expires.toISOString() } : { Timestamp: (o.now ?? new Date()).toISOString() }),
    ...params,
  };
  const query = Object.keys(all)
    .map((k) => [enc(k), enc(all[k]!)])
    .sort(([a], [b]) => (a! < b! ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const host = new URL(sdb.endpoint).host;
  const toSign = `${o.method ?? 'POST'}\n${host}\n/\n${query}`;
  return {
    ...all,
    Signature: createHmac('sha256', o.secret ?? 'S3RVER')
      .update(toSign)
      .digest('base64'),
    ...o.extra,
  };
}

interface Answer {
  status: number;
  body: string;
  code?: string;
}

async function send(params: Record<string, string>, o: SignOpts = {}): Promise<Answer> {
  const form = new URLSearchParams(signed(params, o)).toString();
  const res =
    o.method === 'GET'
      ? await fetch(`${sdb.endpoint}/?${form}`)
      : await fetch(`${sdb.endpoint}/`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
  const body = await res.text();
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  return { status: res.status, body, ...(code ? { code } : {}) };
}

/** Every `<tag>…</tag>` text in a body, in order. */
function all(body: string, tag: string): string[] {
  return [...body.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]!);
}

let seq = 0;
async function domain(): Promise<string> {
  const d = `dom-${++seq}`;
  expect((await send({ Action: 'CreateDomain', DomainName: d })).status).toBe(200);
  return d;
}

function attrs(list: [string, string][], prefix = ''): Record<string, string> {
  return Object.fromEntries(
    list.flatMap(([n, v], i) => [
      [`${prefix}Attribute.${i + 1}.Name`, n],
      [`${prefix}Attribute.${i + 1}.Value`, v],
    ]),
  );
}

describe('authentication (Signature Version 2)', () => {
  test("the verifier accepts AWS's published example request and nothing else", () => {
    // the General Reference's DescribeJobFlows example: its documented key, time and signature
    const params = new Map(
      Object.entries({
        AWSAccessKeyId: 'AKIAIOSFODNN7EXAMPLE',
        Action: 'DescribeJobFlows',
        SignatureMethod: 'HmacSHA256',
        SignatureVersion: '2',
        Timestamp: '2011-10-03T15:19:30',
        Version: '2009-03-31',
        Signature: 'i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs=',
      }),
    );
    const req = {
      method: 'GET',
      host: 'elasticmapreduce.amazonaws.com',
      path: '/',
      params,
      keys: [{ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }],
      now: Date.parse('2011-10-03T15:20:00Z'),
    };
    expect(() => verifySigV2(req)).not.toThrow();
    const codeOf = (r: typeof req): string | undefined => {
      try {
        verifySigV2(r);
      } catch (e) {
        return e instanceof SdbError ? e.code : 'other';
      }
      return undefined;
    };
    expect(codeOf({ ...req, method: 'POST' })).toBe('SignatureDoesNotMatch');
    expect(codeOf({ ...req, params: new Map([...params, ['Version', '2009-04-15']]) })).toBe('SignatureDoesNotMatch');
    expect(codeOf({ ...req, now: Date.parse('2011-10-03T15:35:00Z') })).toBe('RequestExpired');
  });

  test('correctly signed GET and POST requests are answered', async () => {
    expect((await send({ Action: 'ListDomains' }, { method: 'GET' })).status).toBe(200);
    const r = await send({ Action: 'ListDomains' }, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('<ListDomainsResponse xmlns="http://sdb.amazonaws.com/doc/2009-04-15/">');
  });

  test('a wrong signature, a changed parameter or a signature for another method is 403 SignatureDoesNotMatch', async () => {
    expect(await send({ Action: 'ListDomains' }, { secret: 'wrong' })).toMatchObject({ status: 403, code: 'SignatureDoesNotMatch' });
    expect(await send({ Action: 'ListDomains' }, { extra: { MaxNumberOfDomains: '5' } })).toMatchObject({
      status: 403,
      code: 'SignatureDoesNotMatch',
    });
    const forPost = new URLSearchParams(signed({ Action: 'ListDomains' }, { method: 'POST' }));
    const res = await fetch(`${sdb.endpoint}/?${forPost}`);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
  });

  test('unknown or missing keys, other signing methods and versions are refused', async () => {
    expect(await send({ Action: 'ListDomains' }, { keyId: 'NOBODY' })).toMatchObject({ status: 403, code: 'AuthFailure' });
    expect(await send({ Action: 'ListDomains' }, { extra: { Signature: '' } })).toMatchObject({ status: 403, code: 'AuthMissingFailure' });
    expect(await send({ Action: 'ListDomains', SignatureMethod: 'HmacSHA1' })).toMatchObject({
      status: 400,
      code: 'InvalidParameterValue',
    });
    expect(await send({ Action: 'ListDomains', Version: '2007-11-07' })).toMatchObject({ status: 400, code: 'NoSuchVersion' });
    expect(await send({ Action: 'Query', DomainName: 'x' })).toMatchObject({ status: 400, code: 'InvalidAction' });
    expect(await send({})).toMatchObject({ status: 400, code: 'MissingAction' });
  });

  test('a Timestamp more than 15 minutes off, or an Expires in the past, is 400 RequestExpired', async () => {
    const min = 60_000;
    expect(await send({ Action: 'ListDomains' }, { now: new Date(Date.now() - 16 * min) })).toMatchObject({
      status: 400,
      code: 'RequestExpired',
    });
    expect(await send({ Action: 'ListDomains' }, { now: new Date(Date.now() + 16 * min) })).toMatchObject({
      status: 400,
      code: 'RequestExpired',
    });
    expect((await send({ Action: 'ListDomains' }, { now: new Date(Date.now() - 10 * min) })).status).toBe(200);
    expect(await send({ Action: 'ListDomains' }, { expires: new Date(Date.now() - min) })).toMatchObject({
      status: 400,
      code: 'RequestExpired',
    });
    expect((await send({ Action: 'ListDomains' }, { expires: new Date(Date.now() + min) })).status).toBe(200);
  });

  test('a key issued with a session token needs it as SecurityToken', async () => {
    const s = await startSimpleDbServer({ credentials: [{ accessKeyId: 'TMP', secretAccessKey: 'tmp', sessionToken: 'tok' }] });
    const saved = sdb;
    sdb = s;
    try {
      expect((await send({ Action: 'ListDomains', SecurityToken: 'tok' }, { keyId: 'TMP', secret: 'tmp' })).status).toBe(200);
      expect(await send({ Action: 'ListDomains' }, { keyId: 'TMP', secret: 'tmp' })).toMatchObject({
        status: 403,
        code: 'InvalidClientTokenId',
      });
      expect(await send({ Action: 'ListDomains', SecurityToken: 'other' }, { keyId: 'TMP', secret: 'tmp' })).toMatchObject({
        status: 403,
        code: 'InvalidClientTokenId',
      });
    } finally {
      sdb = saved;
      await s.stop();
    }
  });
});

describe('limits and error codes', () => {
  test('domain names: 3 to 255 of a-z A-Z 0-9 _ - .; a missing domain is NoSuchDomain', async () => {
    for (const bad of ['ab', 'has space', 'x'.repeat(256), 'semi;colon'])
      expect(await send({ Action: 'CreateDomain', DomainName: bad })).toMatchObject({ status: 400, code: 'InvalidParameterValue' });
    expect((await send({ Action: 'CreateDomain', DomainName: 'a_b-c.D9' })).status).toBe(200);
    expect(await send({ Action: 'DomainMetadata', DomainName: 'missing-domain' })).toMatchObject({ status: 400, code: 'NoSuchDomain' });
    expect(await send({ Action: 'PutAttributes', DomainName: 'missing-domain', ItemName: 'i', ...attrs([['a', 'b']]) })).toMatchObject({
      code: 'NoSuchDomain',
    });
    expect((await send({ Action: 'DeleteDomain', DomainName: 'missing-domain' })).status).toBe(200);
  });

  test('the domain limit gives 409 NumberDomainsExceeded', async () => {
    const s = await startSimpleDbServer({ maxDomains: 2 });
    const saved = sdb;
    sdb = s;
    try {
      expect((await send({ Action: 'CreateDomain', DomainName: 'one' })).status).toBe(200);
      expect((await send({ Action: 'CreateDomain', DomainName: 'two' })).status).toBe(200);
      expect((await send({ Action: 'CreateDomain', DomainName: 'two' })).status).toBe(200);
      expect(await send({ Action: 'CreateDomain', DomainName: 'three' })).toMatchObject({ status: 409, code: 'NumberDomainsExceeded' });
    } finally {
      sdb = saved;
      await s.stop();
    }
  });

  test('names and values of up to 1,024 bytes', async () => {
    const d = await domain();
    const k = 'k'.repeat(1024);
    expect((await send({ Action: 'PutAttributes', DomainName: d, ItemName: k, ...attrs([[k, k]]) })).status).toBe(200);
    for (const [item, name, value] of [
      [k + 'k', 'n', 'v'],
      ['i', k + 'k', 'v'],
      ['i', 'n', 'é'.repeat(513)],
    ] as const)
      expect(await send({ Action: 'PutAttributes', DomainName: d, ItemName: item, ...attrs([[name, value]]) })).toMatchObject({
        status: 400,
        code: 'InvalidParameterValue',
      });
  });

  test('256 pairs per item and per call, 25 distinct items per batch', async () => {
    const d = await domain();
    const pairs = (n: number, from = 0): [string, string][] => Array.from({ length: n }, (_, i) => [`a${from + i}`, 'v']);
    expect(await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs(pairs(257)) })).toMatchObject({
      status: 409,
      code: 'NumberSubmittedAttributesExceeded',
    });
    expect((await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs(pairs(200)) })).status).toBe(200);
    expect((await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs(pairs(56, 200)) })).status).toBe(200);
    expect(await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs([['one', 'more']]) })).toMatchObject({
      status: 409,
      code: 'NumberItemAttributesExceeded',
    });
    // the same pair again is no new pair
    expect((await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs([['a0', 'v']]) })).status).toBe(200);

    const items = (n: number, name = (i: number) => `item${i}`) =>
      Object.assign(
        {},
        ...Array.from({ length: n }, (_, i) => ({ [`Item.${i + 1}.ItemName`]: name(i), ...attrs([['x', 'y']], `Item.${i + 1}.`) })),
      );
    expect((await send({ Action: 'BatchPutAttributes', DomainName: d, ...items(25) })).status).toBe(200);
    expect(await send({ Action: 'BatchPutAttributes', DomainName: d, ...items(26) })).toMatchObject({
      status: 409,
      code: 'NumberSubmittedItemsExceeded',
    });
    expect(await send({ Action: 'BatchPutAttributes', DomainName: d, ...items(3, () => 'same') })).toMatchObject({
      status: 400,
      code: 'DuplicateItemName',
    });
    expect(await send({ Action: 'BatchDeleteAttributes', DomainName: d, ...items(26) })).toMatchObject({
      status: 409,
      code: 'NumberSubmittedItemsExceeded',
    });
    expect(await send({ Action: 'ListDomains', MaxNumberOfDomains: '101' })).toMatchObject({ status: 400, code: 'InvalidParameterValue' });
  });

  test('Expected: the documented codes for each way a condition fails or is malformed', async () => {
    const d = await domain();
    const put = (extra: Record<string, string>, item = 'i') =>
      send({ Action: 'PutAttributes', DomainName: d, ItemName: item, ...attrs([['v', '1']]), ...extra });
    expect((await put({ 'Expected.1.Name': 'v', 'Expected.1.Exists': 'false' })).status).toBe(200);
    expect(await put({ 'Expected.1.Name': 'v', 'Expected.1.Exists': 'false' })).toMatchObject({
      status: 409,
      code: 'ConditionalCheckFailed',
    });
    expect(await put({ 'Expected.1.Name': 'v', 'Expected.1.Value': '0' })).toMatchObject({ status: 409, code: 'ConditionalCheckFailed' });
    expect((await put({ 'Expected.1.Name': 'v', 'Expected.1.Value': '1' })).status).toBe(200);
    expect(await put({ 'Expected.1.Name': 'w', 'Expected.1.Value': '1' })).toMatchObject({ status: 404, code: 'AttributeDoesNotExist' });
    expect(await put({ 'Expected.1.Name': 'v', 'Expected.1.Exists': 'false', 'Expected.1.Value': '1' })).toMatchObject({
      status: 400,
      code: 'ExistsAndExpectedValue',
    });
    expect(await put({ 'Expected.1.Name': 'v' })).toMatchObject({ status: 400, code: 'IncompleteExpectedExpression' });
    expect(await put({ 'Expected.1.Name': 'v', 'Expected.1.Value': '1', 'Expected.2.Name': 'w', 'Expected.2.Value': '1' })).toMatchObject({
      status: 400,
      code: 'MultipleExpectedNames',
    });
    await send({
      Action: 'PutAttributes',
      DomainName: d,
      ItemName: 'multi',
      ...attrs([
        ['v', '1'],
        ['v', '2'],
      ]),
    });
    expect(await put({ 'Expected.Name': 'v', 'Expected.Value': '1' }, 'multi')).toMatchObject({
      status: 409,
      code: 'MultiValuedAttribute',
    });
    expect(
      await send({ Action: 'DeleteAttributes', DomainName: d, ItemName: 'i', 'Expected.1.Name': 'v', 'Expected.1.Value': '2' }),
    ).toMatchObject({ status: 409, code: 'ConditionalCheckFailed' });
    expect(
      (await send({ Action: 'DeleteAttributes', DomainName: d, ItemName: 'i', 'Expected.1.Name': 'v', 'Expected.1.Value': '1' })).status,
    ).toBe(200);
    expect(all((await send({ Action: 'GetAttributes', DomainName: d, ItemName: 'i', ConsistentRead: 'true' })).body, 'Name')).toEqual([]);
  });
});

describe('Select', () => {
  let d: string;
  beforeAll(async () => {
    d = await domain();
    for (let b = 0; b < 4; b++) {
      const batch = Object.assign(
        {},
        ...Array.from({ length: 25 }, (_, i) => {
          const n = b * 25 + i;
          const extra: [string, string][] =
            n % 10 === 0
              ? [
                  ['tag', 'x'],
                  ['tag', 'y'],
                ]
              : [];
          return {
            [`Item.${i + 1}.ItemName`]: `item-${String(n).padStart(3, '0')}`,
            ...attrs([['n', String(n).padStart(3, '0')], ['kind', n % 2 ? 'odd' : 'even'], ...extra], `Item.${i + 1}.`),
          };
        }),
      );
      expect((await send({ Action: 'BatchPutAttributes', DomainName: d, ...batch })).status).toBe(200);
    }
  });

  const names = async (expression: string): Promise<string[]> => {
    const r = await send({ Action: 'Select', SelectExpression: expression, ConsistentRead: 'true' });
    expect(r.status).toBe(200);
    return [...r.body.matchAll(/<Item><Name>([^<]*)<\/Name>/g)].map((m) => m[1]!);
  };

  test('where with =, !=, <, like, not like, between, in, is null, every(), and/or/not; order by; count(*)', async () => {
    expect(await names(`select itemName() from \`${d}\` where n = '007'`)).toEqual(['item-007']);
    expect(await names(`SELECT * FROM \`${d}\` WHERE n < '003'`)).toEqual(['item-000', 'item-001', 'item-002']);
    expect(await names(`select * from \`${d}\` where itemName() like '%-09%' and kind != 'odd'`)).toEqual([
      'item-090',
      'item-092',
      'item-094',
      'item-096',
      'item-098',
    ]);
    expect((await names(`select * from \`${d}\` where itemName() not like 'item-0%'`)).length).toBe(0);
    expect(await names(`select * from \`${d}\` where n between '010' and '012' or n in ('050', '051')`)).toEqual([
      'item-010',
      'item-011',
      'item-012',
      'item-050',
      'item-051',
    ]);
    expect((await names(`select * from \`${d}\` where tag is not null`)).length).toBe(10);
    expect((await names(`select * from \`${d}\` where tag = 'y'`)).length).toBe(10);
    expect((await names(`select * from \`${d}\` where every(tag) = 'y'`)).length).toBe(0);
    expect((await names(`select * from \`${d}\` where not (kind = 'odd') and tag is null`)).length).toBe(40);
    expect(await names(`select * from \`${d}\` where n > '096' order by n desc`)).toEqual(['item-099', 'item-098', 'item-097']);
    const count = await send({
      Action: 'Select',
      SelectExpression: `select count(*) from \`${d}\` where kind = 'odd'`,
      ConsistentRead: 'true',
    });
    expect(all(count.body, 'Value')).toEqual(['50']);
  });

  test('only the attributes asked for; a quote doubled inside a literal', async () => {
    const r = await send({
      Action: 'Select',
      SelectExpression: `select kind from \`${d}\` where n = '001' or n = 'it''s'`,
      ConsistentRead: 'true',
    });
    expect(all(r.body, 'Name')).toEqual(['item-001', 'kind']);
  });

  test('unsupported or invalid expressions are InvalidQueryExpression; sorting needs a predicate', async () => {
    for (const bad of [
      `select * from \`${d}\` where n = 7`,
      `select * from \`${d}\` where n = '1' intersection kind = 'odd'`,
      `select * from \`${d}\` limit 2501`,
      `select * from \`${d}\` where`,
      `select * from \`${d}\` where n = 'unterminated`,
      `delete from \`${d}\``,
    ])
      expect(await send({ Action: 'Select', SelectExpression: bad })).toMatchObject({ status: 400, code: 'InvalidQueryExpression' });
    expect(await send({ Action: 'Select', SelectExpression: `select * from \`${d}\` order by n` })).toMatchObject({
      status: 400,
      code: 'InvalidSortExpression',
    });
    expect(await send({ Action: 'Select', SelectExpression: 'select * from `no-such-domain`' })).toMatchObject({
      status: 400,
      code: 'NoSuchDomain',
    });
  });

  test('pages of `limit` items (default 100) with NextToken, which only fits its own expression', async () => {
    const expression = `select itemName() from \`${d}\` limit 30`;
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await send({
        Action: 'Select',
        SelectExpression: expression,
        ConsistentRead: 'true',
        ...(token ? { NextToken: token } : {}),
      });
      const page = [...r.body.matchAll(/<Item><Name>([^<]*)<\/Name>/g)].map((m) => m[1]!);
      expect(page.length).toBeLessThanOrEqual(30);
      seen.push(...page);
      token = all(r.body, 'NextToken')[0];
      if (pages++ === 0)
        expect(await send({ Action: 'Select', SelectExpression: `select * from \`${d}\``, NextToken: token! })).toMatchObject({
          status: 400,
          code: 'InvalidNextToken',
        });
    } while (token);
    expect(pages).toBe(4);
    expect(new Set(seen).size).toBe(100);
    expect((await names(`select * from \`${d}\``)).length).toBe(100);
  });

  test('the emptySelectRate fault answers empty pages whose NextToken continues where the page would have started', async () => {
    const expression = `select itemName() from \`${d}\` limit 40`;
    sdb.setFaults({ emptySelectRate: 1 });
    const empty = await send({ Action: 'Select', SelectExpression: expression, ConsistentRead: 'true' });
    expect(all(empty.body, 'Name')).toEqual([]);
    const token = all(empty.body, 'NextToken')[0]!;
    const again = await send({ Action: 'Select', SelectExpression: expression, ConsistentRead: 'true', NextToken: token });
    expect(all(again.body, 'NextToken')).toEqual([token]);
    sdb.setFaults({ emptySelectRate: 0.5 });
    const seen: string[] = [];
    let next: string | undefined = token;
    try {
      while (next) {
        const r = await send({ Action: 'Select', SelectExpression: expression, ConsistentRead: 'true', NextToken: next });
        seen.push(...[...r.body.matchAll(/<Item><Name>([^<]*)<\/Name>/g)].map((m) => m[1]!));
        next = all(r.body, 'NextToken')[0];
      }
    } finally {
      sdb.setFaults({});
    }
    expect(seen.length).toBe(100);
    expect(new Set(seen).size).toBe(100);
  });

  test('a page stops before 1 MB of names and values', async () => {
    const big = await domain();
    const value = 'v'.repeat(1000);
    const pairs: [string, string][] = Array.from({ length: 200 }, (_, i) => [`a${i}`, value]); // ~200 KB per item
    for (let i = 0; i < 8; i++)
      expect((await send({ Action: 'PutAttributes', DomainName: big, ItemName: `big${i}`, ...attrs(pairs) })).status).toBe(200);
    const r = await send({ Action: 'Select', SelectExpression: `select * from \`${big}\``, ConsistentRead: 'true' });
    const items = [...r.body.matchAll(/<Item><Name>/g)].length;
    expect(items).toBeGreaterThan(0);
    expect(items).toBeLessThan(8);
    expect(items * 200 * 1002).toBeLessThanOrEqual(1024 * 1024);
    expect(all(r.body, 'NextToken')).toHaveLength(1);
  });
});

describe('answers', () => {
  test('names and values XML cannot carry are base64-encoded; markup is escaped; carriage returns kept', async () => {
    const d = await domain();
    await send({
      Action: 'PutAttributes',
      DomainName: d,
      ItemName: 'i',
      ...attrs([
        ['bin\u0001', 'a\u0000b'],
        ['text', '<&>\r\n'],
      ]),
    });
    const r = await send({ Action: 'GetAttributes', DomainName: d, ItemName: 'i', ConsistentRead: 'true' });
    expect(r.body).toContain(`<Name encoding="base64">${Buffer.from('bin\u0001').toString('base64')}</Name>`);
    expect(r.body).toContain(`<Value encoding="base64">${Buffer.from('a\u0000b').toString('base64')}</Value>`);
    expect(r.body).toContain('<Value>&lt;&amp;&gt;&#13;\n</Value>');
  });

  test('an error is <Response><Errors><Error> with Code and Message, and a RequestID', async () => {
    const r = await send({ Action: 'DomainMetadata', DomainName: 'missing-domain' });
    expect(r.body).toMatch(
      /^<\?xml version="1.0"\?>\s*<Response><Errors><Error><Code>NoSuchDomain<\/Code><Message>The specified domain does not exist.<\/Message>/,
    );
    expect(r.body).toMatch(/<RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/);
  });
});

describe('eventual consistency', () => {
  test('reads without ConsistentRead see the previous value within the window, then the new one', async () => {
    const s = await startSimpleDbServer({ eventualConsistencyMs: 1500 });
    const saved = sdb;
    sdb = s;
    try {
      const d = await domain();
      await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs([['v', 'old']]) });
      await new Promise((r) => setTimeout(r, 1600));
      await send({ Action: 'PutAttributes', DomainName: d, ItemName: 'i', ...attrs([['v', 'new']]), 'Attribute.1.Replace': 'true' });
      const get = async (consistent: boolean) =>
        all(
          (await send({ Action: 'GetAttributes', DomainName: d, ItemName: 'i', ...(consistent ? { ConsistentRead: 'true' } : {}) })).body,
          'Value',
        );
      expect(await get(true)).toEqual(['new']);
      expect(await get(false)).toEqual(['old']);
      const selected = await send({ Action: 'Select', SelectExpression: `select * from \`${d}\` where v = 'new'` });
      expect(all(selected.body, 'Name')).toEqual([]);
      let seen: string[] = [];
      for (const deadline = Date.now() + 30_000; Date.now() < deadline && seen[0] !== 'new';) {
        await new Promise((r) => setTimeout(r, 100));
        seen = await get(false);
      }
      expect(seen).toEqual(['new']);
    } finally {
      sdb = saved;
      await s.stop();
    }
  });
});

describe('faults and counters', () => {
  test('503 ServiceUnavailable, 503 Throttling and cut connections, counted per Action', async () => {
    sdb.resetCounts();
    sdb.setFaults({ errorRate: 1 });
    expect(await send({ Action: 'ListDomains' })).toMatchObject({ status: 503, code: 'ServiceUnavailable' });
    sdb.setFaults({ throttleRate: 1 });
    expect(await send({ Action: 'ListDomains' })).toMatchObject({ status: 503, code: 'Throttling' });
    sdb.setFaults({ cutRate: 1 });
    await expect(send({ Action: 'DomainMetadata', DomainName: 'x' })).rejects.toThrow();
    sdb.setFaults({});
    expect((await send({ Action: 'ListDomains' })).status).toBe(200);
    expect(sdb.requestCounts()).toEqual({
      total: 4,
      ListDomains: 3,
      DomainMetadata: 1,
      'fault:error': 1,
      'fault:throttle': 1,
      'fault:cut': 1,
    });
    sdb.resetCounts();
    expect(sdb.requestCounts()).toEqual({ total: 0 });
  });

  test('some cut connections lose the answer of a write that was applied', async () => {
    const d = await domain();
    sdb.setFaults({ cutRate: 1 });
    try {
      for (let i = 0; i < 20; i++)
        await expect(send({ Action: 'PutAttributes', DomainName: d, ItemName: `i${i}`, ...attrs([['v', '1']]) })).rejects.toThrow();
    } finally {
      sdb.setFaults({});
    }
    const applied = all(
      (await send({ Action: 'Select', SelectExpression: `select itemName() from \`${d}\``, ConsistentRead: 'true' })).body,
      'Name',
    ).length;
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(20);
  });
});
