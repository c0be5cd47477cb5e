/**
 * The test SimpleDB server's operations, each a function of the request's parameters returning
 * the answer's XML (or throwing the SdbError AWS would answer with). Rules, as AWS documents them:
 *
 * - domain names are 3–255 characters of `a-z A-Z 0-9 _ - .`; CreateDomain of an existing domain
 *   and DeleteDomain of a missing one succeed; at most `maxDomains` (250) domains
 *   (NumberDomainsExceeded);
 * - an item holds at most 256 (name, value) pairs (NumberItemAttributesExceeded), a call submits
 *   at most 256 (NumberSubmittedAttributesExceeded), a batch at most 25 items
 *   (NumberSubmittedItemsExceeded) with distinct names (DuplicateItemName);
 * - PutAttributes adds values (pairs are sets); `Replace=true` first removes the attribute's
 *   values. DeleteAttributes without attributes deletes the item, with a name all its values,
 *   with a name and value that value; an item without attributes does not exist;
 * - `Expected`: `Exists=false` fails with ConditionalCheckFailed if the attribute exists; a
 *   `Value` fails with AttributeDoesNotExist if it is missing, ConditionalCheckFailed if it
 *   differs, MultiValuedAttribute if it has several values;
 * - ListDomains pages by MaxNumberOfDomains (1–100, default 100); Select pages by its `limit`
 *   (default 100, at most 2500) and by 1 MB of names and values; both with NextToken. A Select
 *   that runs out of time answers a partial or empty page with a NextToken (AWS: after 5 s);
 *   here the `emptySelectRate` fault does that.
 */
import { byteOrder, copyAttrs, Domain, pairCount, type Attrs, type SdbStore } from './store.js';
import { matches, parseSelect, sortKey, type Query } from './select.js';
import { attributesXml, escapeXml, responseXml, sdbError, textElement } from './xml.js';
import * as P from './params.js';

export interface OpsContext {
  store: SdbStore;
  maxDomains: number;
  /** whether this Select answers an empty page with a NextToken, as AWS's do when they run out of time */
  emptySelectPage: () => boolean;
}

type Handler = (p: P.Params, ctx: OpsContext) => string;

const MAX_PAIRS = 256;
const MAX_BATCH = 25;
const SELECT_PAGE_BYTES = 1024 * 1024;

function domainName(p: P.Params): string {
  const name = P.required(p, 'DomainName');
  if (!/^[a-zA-Z0-9_.-]{3,255}$/.test(name))
    throw sdbError('InvalidParameterValue', `Value (${name}) for parameter DomainName is invalid.`);
  return name;
}

function domainOf(p: P.Params, ctx: OpsContext): Domain {
  const d = ctx.store.domains.get(domainName(p));
  if (d === undefined) throw sdbError('NoSuchDomain', 'The specified domain does not exist.');
  return d;
}

function token(data: object): string {
  return Buffer.from(JSON.stringify(data)).toString('base64');
}

function untoken(s: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(s, 'base64').toString('utf8'));
    if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw sdbError('InvalidNextToken', 'The specified next token is not valid.');
}

function checkExpected(e: P.Expected | undefined, attrs: Attrs | undefined): void {
  if (e === undefined) return;
  const values = attrs?.get(e.name) ?? [];
  if (!e.exists) {
    if (values.length > 0) throw sdbError('ConditionalCheckFailed', `Conditional check failed. Attribute (${e.name}) value exists.`);
    return;
  }
  if (values.length === 0) throw sdbError('AttributeDoesNotExist', `Attribute (${e.name}) does not exist`);
  if (values.length > 1)
    throw sdbError(
      'MultiValuedAttribute',
      `Attribute (${e.name}) is multi-valued. Conditional check can only be performed on a single-valued attribute`,
    );
  if (values[0] !== e.value)
    throw sdbError(
      'ConditionalCheckFailed',
      `Conditional check failed. Attribute (${e.name}) value is (${values[0]}) but was expected (${e.value})`,
    );
}

function applyPut(current: Attrs | undefined, puts: P.PutAttr[]): Attrs {
  if (puts.length > MAX_PAIRS) throw sdbError('NumberSubmittedAttributesExceeded', 'Too many attributes in a single call.');
  const next = copyAttrs(current);
  for (const a of puts) if (a.replace) next.delete(a.name);
  for (const a of puts) {
    const values = next.get(a.name) ?? [];
    if (!values.includes(a.value)) values.push(a.value);
    next.set(a.name, values);
  }
  if (pairCount(next) > MAX_PAIRS) throw sdbError('NumberItemAttributesExceeded', 'Too many attributes in this item.');
  return next;
}

function applyDelete(current: Attrs | undefined, dels: P.DeleteAttr[]): Attrs {
  if (dels.length === 0) return new Map();
  const next = copyAttrs(current);
  for (const d of dels) {
    const left = d.value === undefined ? [] : (next.get(d.name) ?? []).filter((v) => v !== d.value);
    if (left.length === 0) next.delete(d.name);
    else next.set(d.name, left);
  }
  return next;
}

const createDomain: Handler = (p, ctx) => {
  const name = domainName(p);
  if (!ctx.store.domains.has(name)) {
    if (ctx.store.domains.size >= ctx.maxDomains) throw sdbError('NumberDomainsExceeded', 'Number of domains limit exceeded.');
    ctx.store.domains.set(name, new Domain());
  }
  return responseXml('CreateDomain');
};

const deleteDomain: Handler = (p, ctx) => {
  ctx.store.domains.delete(domainName(p));
  return responseXml('DeleteDomain');
};

const listDomains: Handler = (p, ctx) => {
  const max = Number(p.get('MaxNumberOfDomains') ?? '100');
  if (!Number.isInteger(max) || max < 1 || max > 100)
    throw sdbError(
      'InvalidParameterValue',
      `Value (${p.get('MaxNumberOfDomains')}) for parameter MaxNumberOfDomains is invalid. MaxNumberOfDomains must be between 1 and 100.`,
    );
  const tok = p.get('NextToken');
  const after = tok === undefined ? undefined : untoken(tok)['after'];
  if (tok !== undefined && typeof after !== 'string') throw sdbError('InvalidNextToken', 'The specified next token is not valid.');
  const names = [...ctx.store.domains.keys()].sort(byteOrder).filter((n) => typeof after !== 'string' || byteOrder(n, after) > 0);
  const page = names.slice(0, max);
  const next = names.length > max ? `<NextToken>${token({ after: page[page.length - 1] })}</NextToken>` : '';
  return responseXml('ListDomains', page.map((n) => `<DomainName>${escapeXml(n)}</DomainName>`).join('') + next);
};

const domainMetadata: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const names = new Set<string>();
  let items = 0;
  let itemBytes = 0;
  let values = 0;
  let valueBytes = 0;
  for (const item of ctx.store.itemNames(d, true)) {
    items++;
    itemBytes += Buffer.byteLength(item);
    for (const [n, vs] of ctx.store.read(d, item, true)!) {
      names.add(n);
      values += vs.length;
      for (const v of vs) valueBytes += Buffer.byteLength(v);
    }
  }
  const nameBytes = [...names].reduce((s, n) => s + Buffer.byteLength(n), 0);
  const fields: [string, number][] = [
    ['ItemCount', items],
    ['ItemNamesSizeBytes', itemBytes],
    ['AttributeNameCount', names.size],
    ['AttributeNamesSizeBytes', nameBytes],
    ['AttributeValueCount', values],
    ['AttributeValuesSizeBytes', valueBytes],
    ['Timestamp', Math.floor(Date.now() / 1000)],
  ];
  return responseXml('DomainMetadata', fields.map(([k, v]) => `<${k}>${v}</${k}>`).join(''));
};

const putAttributes: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const item = P.checkLength('ItemName', P.required(p, 'ItemName'));
  const puts = P.putAttributes(p);
  if (puts.length === 0) throw sdbError('MissingParameter', 'The request must contain the parameter Attribute.Name');
  const cond = P.expected(p);
  const current = ctx.store.read(d, item, true);
  checkExpected(cond, current);
  ctx.store.write(d, item, applyPut(current, puts));
  return responseXml('PutAttributes');
};

const deleteAttributes: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const item = P.checkLength('ItemName', P.required(p, 'ItemName'));
  const dels = P.deleteAttributes(p);
  const cond = P.expected(p);
  const current = ctx.store.read(d, item, true);
  checkExpected(cond, current);
  if (current !== undefined) ctx.store.write(d, item, applyDelete(current, dels));
  return responseXml('DeleteAttributes');
};

/** The items of a batch, checked whole before anything is written. */
function batchItems(p: P.Params): { name: string; params: P.Params }[] {
  const groups = P.numbered(p, 'Item');
  if (groups.length > MAX_BATCH)
    throw sdbError('NumberSubmittedItemsExceeded', `Too many items in a single call. Up to ${MAX_BATCH} items per call allowed.`);
  if (groups.length === 0) throw sdbError('MissingParameter', 'The request must contain the parameter Item.1.ItemName');
  const seen = new Set<string>();
  return groups.map((g) => {
    const name = g.get('ItemName');
    if (name === undefined) throw sdbError('MissingParameter', 'The request must contain the parameter ItemName');
    P.checkLength('ItemName', name);
    if (seen.has(name)) throw sdbError('DuplicateItemName', `Item ${name} was specified more than once.`);
    seen.add(name);
    return { name, params: g };
  });
}

const batchPutAttributes: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const items = batchItems(p);
  const writes = items.map(({ name, params }) => {
    const puts = P.putAttributes(params);
    if (puts.length === 0) throw sdbError('MissingParameter', `The request must contain the parameter Attribute.Name for item ${name}`);
    return { name, attrs: applyPut(ctx.store.read(d, name, true), puts) };
  });
  for (const w of writes) ctx.store.write(d, w.name, w.attrs);
  return responseXml('BatchPutAttributes');
};

const batchDeleteAttributes: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const writes = batchItems(p).map(({ name, params }) => ({ name, dels: P.deleteAttributes(params) }));
  for (const w of writes) {
    const current = ctx.store.read(d, w.name, true);
    if (current !== undefined) ctx.store.write(d, w.name, applyDelete(current, w.dels));
  }
  return responseXml('BatchDeleteAttributes');
};

const getAttributes: Handler = (p, ctx) => {
  const d = domainOf(p, ctx);
  const item = P.checkLength('ItemName', P.required(p, 'ItemName'));
  const names = new Set([...p].filter(([k]) => /^AttributeName(\.\d+)?$/.test(k)).map(([, v]) => v));
  const attrs = ctx.store.read(d, item, P.booleanParam(p, 'ConsistentRead')) ?? new Map<string, string[]>();
  const shown = [...attrs].filter(([n]) => names.size === 0 || names.has(n));
  return responseXml('GetAttributes', attributesXml(shown));
};

function selectPage(q: Query, hits: { name: string; attrs: Attrs }[], start: number): { xml: string; next?: number } {
  const limit = q.limit ?? 100;
  let xml = '';
  let bytes = 0;
  let i = start;
  for (; i < hits.length && i - start < limit; i++) {
    const { name, attrs } = hits[i]!;
    const out =
      q.output.kind === 'all'
        ? [...attrs]
        : q.output.kind === 'attrs'
          ? [...attrs].filter(([n]) => (q.output as { names: string[] }).names.includes(n))
          : [];
    const size =
      Buffer.byteLength(name) + out.reduce((s, [n, vs]) => s + vs.reduce((t, v) => t + Buffer.byteLength(n) + Buffer.byteLength(v), 0), 0);
    if (bytes + size > SELECT_PAGE_BYTES && i > start) break;
    bytes += size;
    xml += `<Item>${textElement('Name', name)}${attributesXml(out)}</Item>`;
  }
  return i < hits.length ? { xml, next: i } : { xml };
}

const select: Handler = (p, ctx) => {
  const expression = P.required(p, 'SelectExpression');
  const q = parseSelect(expression);
  const d = ctx.store.domains.get(q.domain);
  if (d === undefined) throw sdbError('NoSuchDomain', 'The specified domain does not exist.');
  const consistent = P.booleanParam(p, 'ConsistentRead');
  let hits = ctx.store
    .itemNames(d, consistent)
    .map((name) => ({ name, attrs: ctx.store.read(d, name, consistent)! }))
    .filter((h) => matches(q.where, h.name, h.attrs));
  if (q.output.kind === 'count')
    return responseXml('Select', `<Item><Name>Domain</Name><Attribute><Name>Count</Name><Value>${hits.length}</Value></Attribute></Item>`);
  if (q.orderBy) {
    const { operand, desc } = q.orderBy;
    hits = hits.sort((a, b) => byteOrder(sortKey(operand, a.name, a.attrs), sortKey(operand, b.name, b.attrs)) * (desc ? -1 : 1));
  }
  const start = selectStart(p, expression, q, hits);
  if (ctx.emptySelectPage()) return responseXml('Select', `<NextToken>${p.get('NextToken') ?? token({ e: expression, o: 0 })}</NextToken>`);
  const page = selectPage(q, hits, start);
  if (page.next === undefined) return responseXml('Select', page.xml);
  // in item-name order the token names the last item sent, so deletions between pages skip nothing
  const last = hits[page.next - 1]!.name;
  const next = token(q.orderBy ? { e: expression, o: page.next } : { e: expression, after: last });
  return responseXml('Select', `${page.xml}<NextToken>${next}</NextToken>`);
};

/** Where a Select page starts: at the beginning, or where the NextToken (of the same expression) says. */
function selectStart(p: P.Params, expression: string, q: Query, hits: { name: string }[]): number {
  const tok = p.get('NextToken');
  if (tok === undefined) return 0;
  const state = untoken(tok);
  if (state['e'] !== expression) throw sdbError('InvalidNextToken', 'The specified next token is not valid.');
  const after = state['after'];
  if (!q.orderBy && typeof after === 'string') {
    const i = hits.findIndex((h) => byteOrder(h.name, after) > 0);
    return i < 0 ? hits.length : i;
  }
  if (typeof state['o'] === 'number') return state['o'];
  throw sdbError('InvalidNextToken', 'The specified next token is not valid.');
}

export const ACTIONS: Record<string, Handler> = {
  CreateDomain: createDomain,
  DeleteDomain: deleteDomain,
  ListDomains: listDomains,
  DomainMetadata: domainMetadata,
  PutAttributes: putAttributes,
  DeleteAttributes: deleteAttributes,
  BatchPutAttributes: batchPutAttributes,
  BatchDeleteAttributes: batchDeleteAttributes,
  GetAttributes: getAttributes,
  Select: select,
};
