/**
 * Signature Version 2 against AWS's published examples:
 * - the General Reference / EMR developer guide's DescribeJobFlows request, whose string to sign
 *   and signature (with the documentation's example secret key) AWS prints;
 * - the SimpleDB developer guide's PutAttributes request, whose string to sign AWS prints (its
 *   signature is left to the reader's own key).
 */
import { describe, expect, it } from '@jest/globals';
import { canonicalQueryString, sigV2Encode, sigV2Signature, signV2, stringToSign } from '../../src/jobstore/aws/simpledb/sigv2.js';

const EXAMPLE_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const EXAMPLE_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

describe('SigV2', () => {
  it("signs AWS's DescribeJobFlows example to the published signature", () => {
    const params = {
      Action: 'DescribeJobFlows',
      Version: '2009-03-31',
      AWSAccessKeyId: EXAMPLE_KEY_ID,
      SignatureVersion: '2',
      SignatureMethod: 'HmacSHA256',
      Timestamp: '2011-10-03T15:19:30',
    };
    const toSign = stringToSign({ method: 'GET', host: 'elasticmapreduce.amazonaws.com', path: '/', params });
    expect(toSign).toBe(
      'GET\nelasticmapreduce.amazonaws.com\n/\n' +
        'AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=DescribeJobFlows&SignatureMethod=HmacSHA256' +
        '&SignatureVersion=2&Timestamp=2011-10-03T15%3A19%3A30&Version=2009-03-31',
    );
    expect(sigV2Signature(EXAMPLE_SECRET, toSign)).toBe('i91nKc4PWAt0JJIdXwz9HxZCJDdiy6cf/Mj6vPxyYIs=');
  });

  it("builds the SimpleDB guide's PutAttributes string to sign", () => {
    const params = {
      Action: 'PutAttributes',
      DomainName: 'MyDomain',
      ItemName: 'Item123',
      'Attribute.1.Name': 'Color',
      'Attribute.1.Value': 'Blue',
      'Attribute.2.Name': 'Size',
      'Attribute.2.Value': 'Med',
      'Attribute.3.Name': 'Price',
      'Attribute.3.Value': '0014.99',
      Version: '2009-04-15',
      Timestamp: '2010-01-25T15:01:28-07:00',
      SignatureVersion: '2',
      SignatureMethod: 'HmacSHA256',
      AWSAccessKeyId: EXAMPLE_KEY_ID,
    };
    expect(stringToSign({ method: 'GET', host: 'sdb.amazonaws.com', path: '/', params })).toBe(
      [
        'GET',
        'sdb.amazonaws.com',
        '/',
        'AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Action=PutAttributes&Attribute.1.Name=Color&Attribute.1.Value=Blue' +
          '&Attribute.2.Name=Size&Attribute.2.Value=Med&Attribute.3.Name=Price&Attribute.3.Value=0014.99' +
          '&DomainName=MyDomain&ItemName=Item123&SignatureMethod=HmacSHA256&SignatureVersion=2' +
          '&Timestamp=2010-01-25T15%3A01%3A28-07%3A00&Version=2009-04-15',
      ].join('\n'),
    );
  });

  it('encodes per RFC 3986: unreserved characters stay, space is %20, UTF-8 bytes in upper-case hex', () => {
    expect(sigV2Encode('AZaz09-_.~')).toBe('AZaz09-_.~');
    expect(sigV2Encode("a b+c*d!e'(f)/=&")).toBe('a%20b%2Bc%2Ad%21e%27%28f%29%2F%3D%26');
    expect(sigV2Encode('é☃')).toBe('%C3%A9%E2%98%83');
  });

  it('sorts by encoded name in byte order (upper case before lower case, 10 before 2)', () => {
    expect(canonicalQueryString({ b: '1', B: '2', 'Attribute.10.Name': 'x', 'Attribute.2.Name': 'y' })).toBe(
      'Attribute.10.Name=x&Attribute.2.Name=y&B=2&b=1',
    );
  });

  it('signV2 adds the authentication parameters, the session token as SecurityToken, and the port in the host', () => {
    const now = new Date('2026-11-29T12:00:00.123Z');
    const endpoint = new URL('http://127.0.0.1:8080/');
    const creds = { accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'TOKEN/+=' };
    const signed = signV2({ method: 'POST', endpoint, params: { Action: 'ListDomains', Version: '2009-04-15' }, credentials: creds, now });
    const { Signature, ...rest } = signed;
    expect(rest).toEqual({
      Action: 'ListDomains',
      Version: '2009-04-15',
      AWSAccessKeyId: 'AK',
      SignatureVersion: '2',
      SignatureMethod: 'HmacSHA256',
      Timestamp: '2026-11-29T12:00:00Z',
      SecurityToken: 'TOKEN/+=',
    });
    expect(Signature).toBe(sigV2Signature('SK', stringToSign({ method: 'POST', host: '127.0.0.1:8080', path: '/', params: rest })));
    const noToken = signV2({ method: 'GET', endpoint, params: {}, credentials: { accessKeyId: 'AK', secretAccessKey: 'SK' }, now });
    expect(noToken).not.toHaveProperty('SecurityToken');
  });
});
