/**
 * SimpleDB's XML answers, parsed (fast-xml-parser) and validated (zod) into typed results.
 *
 * - Every text is kept as sent: no trimming, no number parsing (attribute values are strings;
 *   `0014.99` stays `0014.99`). Character references (`&#13;`) are decoded.
 * - A name or value SimpleDB cannot put in XML comes as `<Value encoding="base64">…</Value>`:
 *   it is decoded to the original string.
 * - A document that is not well-formed (a truncated answer) is refused.
 * - An error answer is `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>`;
 *   a body that is not such a document (a proxy's HTML page) gives code `HTTP<status>`.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import type { SdbAttribute, SdbDomainMetadata, SdbItem } from './types.js';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  ignoreDeclaration: true,
  removeNSPrefix: true,
  // decodes numeric character references (&#13;), which the XML-only mode leaves alone
  htmlEntities: true,
  isArray: (name) => ['Attribute', 'Item', 'DomainName', 'Error'].includes(name),
});

/** A text element, possibly base64-encoded. */
const text = z.union([
  z.string(),
  z.object({ '#text': z.string().default(''), '@_encoding': z.string().optional() }).transform((t) => {
    if (t['@_encoding'] === undefined) return t['#text'];
    if (t['@_encoding'] !== 'base64') throw new Error(`unknown encoding '${t['@_encoding']}'`);
    return Buffer.from(t['#text'], 'base64').toString('utf8');
  }),
]);

const attribute = z.object({ Name: text, Value: text }).transform((a): SdbAttribute => ({ name: a.Name, value: a.Value }));
/** An element that is empty when it has nothing (`<GetAttributesResult/>` parses as ''). */
const maybeEmpty = <T extends z.ZodTypeAny>(s: T) => z.preprocess((v) => (v === '' ? {} : v), s);

const schemas = {
  ListDomains: maybeEmpty(z.object({ DomainName: z.array(text).default([]), NextToken: z.string().optional() })),
  DomainMetadata: z.object({
    ItemCount: z.coerce.number(),
    ItemNamesSizeBytes: z.coerce.number(),
    AttributeNameCount: z.coerce.number(),
    AttributeNamesSizeBytes: z.coerce.number(),
    AttributeValueCount: z.coerce.number(),
    AttributeValuesSizeBytes: z.coerce.number(),
    Timestamp: z.coerce.number(),
  }),
  GetAttributes: maybeEmpty(z.object({ Attribute: z.array(attribute).default([]) })),
  Select: maybeEmpty(
    z.object({
      Item: z.array(z.object({ Name: text, Attribute: z.array(attribute).default([]) })).default([]),
      NextToken: z.string().optional(),
    }),
  ),
};

export type ResultAction = keyof typeof schemas;

/** A well-formed document (the parser alone accepts a truncated one), as an object. */
function parseXml(body: string): Record<string, unknown> {
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw new Error(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const doc: unknown = parser.parse(body);
  if (typeof doc !== 'object' || doc === null) throw new Error('not an XML document');
  return doc as Record<string, unknown>;
}

/** The `<ActionResult>` of a successful answer, validated; throws a plain Error if malformed. */
export function parseResult<A extends ResultAction>(action: A, body: string): z.output<(typeof schemas)[A]> {
  const response = parseXml(body)[`${action}Response`];
  if (typeof response !== 'object' || response === null) throw new Error(`no ${action}Response element`);
  const result = (response as Record<string, unknown>)[`${action}Result`] ?? '';
  return schemas[action].parse(result) as z.output<(typeof schemas)[A]>;
}

/** Checks that a successful answer without a result is the answer to this action. */
export function checkResponse(action: string, body: string): void {
  if (!(`${action}Response` in parseXml(body))) throw new Error(`no ${action}Response element`);
}

export function domainMetadataOf(r: z.output<(typeof schemas)['DomainMetadata']>): SdbDomainMetadata {
  return {
    itemCount: r.ItemCount,
    attributeNameCount: r.AttributeNameCount,
    attributeValueCount: r.AttributeValueCount,
    itemNamesSizeBytes: r.ItemNamesSizeBytes,
    attributeNamesSizeBytes: r.AttributeNamesSizeBytes,
    attributeValuesSizeBytes: r.AttributeValuesSizeBytes,
    timestamp: r.Timestamp,
  };
}

export function itemsOf(r: z.output<(typeof schemas)['Select']>): SdbItem[] {
  return r.Item.map((i) => ({ name: i.Name, attributes: i.Attribute }));
}

const errorDoc = z.object({
  Response: z.object({
    Errors: z.object({ Error: z.array(z.object({ Code: z.string(), Message: text.optional() })).min(1) }),
    RequestID: z.string().optional(),
  }),
});

export interface SdbErrorInfo {
  code: string;
  message: string;
  requestId?: string;
}

/** The code and message of an error answer (of any body: never throws). */
export function parseError(status: number, body: string): SdbErrorInfo {
  try {
    const r = errorDoc.safeParse(parseXml(body));
    if (r.success) {
      const e = r.data.Response.Errors.Error[0]!;
      return { code: e.Code, message: e.Message ?? '', ...(r.data.Response.RequestID ? { requestId: r.data.Response.RequestID } : {}) };
    }
  } catch {
    // not XML
  }
  return { code: `HTTP${status}`, message: `HTTP ${status} with a body that is not a SimpleDB error` };
}
