/**
 * The test SimpleDB server's answers: the XML documents of the 2009-04-15 API, and its errors.
 *
 * Names and values with characters XML 1.0 cannot carry are sent base64-encoded with
 * `encoding="base64"`, as SimpleDB does.
 */
import { randomUUID } from 'node:crypto';
import { escapeXml } from '../awsQuery.js';

export const NAMESPACE = 'http://sdb.amazonaws.com/doc/2009-04-15/';
const BOX_USAGE = '0.0000219907';

/** An error SimpleDB answers with: its code, HTTP status and message. */
export class SdbError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Codes with their HTTP status, as the SimpleDB API Error Codes table lists them (and the common AWS ones). */
const STATUS: Record<string, number> = {
  AttributeDoesNotExist: 404,
  AuthFailure: 403,
  AuthMissingFailure: 403,
  ConditionalCheckFailed: 409,
  DuplicateItemName: 400,
  ExistsAndExpectedValue: 400,
  IncompleteExpectedExpression: 400,
  InternalError: 500,
  InvalidAction: 400,
  InvalidClientTokenId: 403,
  InvalidHttpRequest: 400,
  InvalidNextToken: 400,
  InvalidParameterCombination: 400,
  InvalidParameterValue: 400,
  InvalidQueryExpression: 400,
  InvalidSortExpression: 400,
  MissingAction: 400,
  MissingParameter: 400,
  MultipleExpectedNames: 400,
  MultiValuedAttribute: 409,
  NoSuchDomain: 400,
  NoSuchVersion: 400,
  NumberDomainsExceeded: 409,
  NumberItemAttributesExceeded: 409,
  NumberSubmittedAttributesExceeded: 409,
  NumberSubmittedItemsExceeded: 409,
  RequestExpired: 400,
  ServiceUnavailable: 503,
  SignatureDoesNotMatch: 403,
  Throttling: 503,
  TooManyRequestedAttributes: 400,
  UnsupportedHttpVerb: 400,
};

export function sdbError(code: keyof typeof STATUS & string, message: string): SdbError {
  return new SdbError(code, STATUS[code] ?? 400, message);
}

export { escapeXml };

/** Whether every character may appear in an XML 1.0 document. */
function xmlSafe(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[^\x09\x0A\x0D\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u.test(s);
}

/** `<Tag>text</Tag>`, or `<Tag encoding="base64">…</Tag>` when the text cannot be XML. */
export function textElement(tag: string, s: string): string {
  if (xmlSafe(s)) return `<${tag}>${escapeXml(s)}</${tag}>`;
  return `<${tag} encoding="base64">${Buffer.from(s, 'utf8').toString('base64')}</${tag}>`;
}

export function attributesXml(attrs: Iterable<[string, string[]]>): string {
  let out = '';
  for (const [name, values] of attrs) {
    for (const v of values) out += `<Attribute>${textElement('Name', name)}${textElement('Value', v)}</Attribute>`;
  }
  return out;
}

/** A successful answer: `<ActionResponse>` with an optional `<ActionResult>` and the metadata. */
export function responseXml(action: string, result?: string): string {
  const body = result === undefined ? '' : `<${action}Result>${result}</${action}Result>`;
  const meta = `<ResponseMetadata><RequestId>${randomUUID()}</RequestId><BoxUsage>${BOX_USAGE}</BoxUsage></ResponseMetadata>`;
  return `<?xml version="1.0"?>\n<${action}Response xmlns="${NAMESPACE}">${body}${meta}</${action}Response>`;
}

export function errorXml(e: SdbError): string {
  const err = `<Error><Code>${escapeXml(e.code)}</Code><Message>${escapeXml(e.message)}</Message><BoxUsage>${BOX_USAGE}</BoxUsage></Error>`;
  return `<?xml version="1.0"?>\n<Response><Errors>${err}</Errors><RequestID>${randomUUID()}</RequestID></Response>`;
}
