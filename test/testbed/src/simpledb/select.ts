/**
 * The subset of SimpleDB's Select language the test server understands, parsed honestly:
 *
 *   select (* | itemName() | count(*) | attr, …) from domain
 *     [where expr] [order by (attr | itemName()) [asc|desc]] [limit n]
 *
 *   expr      := term (or term)*          term := factor (and factor)*
 *   factor    := not factor | ( expr ) | predicate
 *   predicate := operand (= | != | < | > | <= | >=) 'literal'
 *              | operand [not] like 'pattern'          (% matches any characters)
 *              | operand is [not] null
 *              | operand between 'a' and 'b'  | operand in ('a', …)
 *   operand   := attr | `attr` | itemName() | every(attr)
 *
 * Keywords are case-insensitive; names are identifiers or `back-quoted` (`` doubles a back
 * quote); literals are 'single' or "double" quoted (the quote doubled inside). Comparisons are
 * lexicographic on the strings, and true when any value of a multi-valued attribute satisfies
 * them (`every()`: all values). As on SimpleDB, the sort attribute must appear in a predicate
 * that is not `is null`. Anything else (intersection, functions, unquoted values) is rejected
 * with InvalidQueryExpression.
 */
import { byteOrder, type Attrs } from './store.js';
import { sdbError, SdbError } from './xml.js';

export type Operand = { kind: 'itemName' } | { kind: 'attr'; name: string; every?: boolean };
type Cmp = '=' | '!=' | '<' | '>' | '<=' | '>=';
export type Expr =
  | { op: 'cmp'; operand: Operand; cmp: Cmp; value: string }
  | { op: 'like'; operand: Operand; not: boolean; pattern: string }
  | { op: 'null'; operand: Operand; not: boolean }
  | { op: 'between'; operand: Operand; lo: string; hi: string }
  | { op: 'in'; operand: Operand; values: string[] }
  | { op: 'and' | 'or'; left: Expr; right: Expr }
  | { op: 'not'; expr: Expr };

export type Output = { kind: 'all' } | { kind: 'itemName' } | { kind: 'count' } | { kind: 'attrs'; names: string[] };

export interface Query {
  output: Output;
  domain: string;
  where?: Expr;
  orderBy?: { operand: Operand; desc: boolean };
  limit?: number;
}

type Token = { t: 'word' | 'name' | 'str' | 'num' | 'punct'; v: string };

function invalid(detail: string): SdbError {
  return sdbError('InvalidQueryExpression', `The specified query expression syntax is not valid. ${detail}`);
}

function readQuoted(s: string, i: number, q: string): [string, number] {
  let out = '';
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] !== q) out += s[j];
    else if (s[j + 1] === q) out += s[j++];
    else return [out, j + 1];
  }
  throw invalid(`Unterminated ${q} at position ${i}.`);
}

export function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) i++;
    else if (c === "'" || c === '"' || c === '`') {
      const [v, next] = readQuoted(s, i, c);
      out.push({ t: c === '`' ? 'name' : 'str', v });
      i = next;
    } else {
      const m = /^(?:[A-Za-z_$][A-Za-z0-9_$]*|\d+|!=|<>|<=|>=|[=<>(),*])/.exec(s.slice(i));
      if (!m) throw invalid(`Unexpected '${c}' at position ${i}.`);
      const v = m[0];
      out.push({ t: /^[A-Za-z_$]/.test(v) ? 'word' : /^\d/.test(v) ? 'num' : 'punct', v: v === '<>' ? '!=' : v });
      i += v.length;
    }
  }
  return out;
}

const KEYWORDS = new Set([
  'select',
  'from',
  'where',
  'and',
  'or',
  'not',
  'like',
  'is',
  'null',
  'between',
  'in',
  'order',
  'by',
  'asc',
  'desc',
  'limit',
  'every',
  'intersection',
]);

class Parser {
  private i = 0;
  constructor(private readonly toks: Token[]) {}

  peek(): Token | undefined {
    return this.toks[this.i];
  }
  isWord(w: string): boolean {
    const t = this.peek();
    return t?.t === 'word' && t.v.toLowerCase() === w;
  }
  isPunct(p: string): boolean {
    const t = this.peek();
    return t?.t === 'punct' && t.v === p;
  }
  word(w: string): void {
    if (!this.isWord(w)) throw invalid(`Expected '${w}' but found '${this.peek()?.v ?? 'end of expression'}'.`);
    this.i++;
  }
  punct(p: string): void {
    if (!this.isPunct(p)) throw invalid(`Expected '${p}' but found '${this.peek()?.v ?? 'end of expression'}'.`);
    this.i++;
  }
  next(): Token {
    const t = this.toks[this.i++];
    if (t === undefined) throw invalid('Unexpected end of expression.');
    return t;
  }
  /** the token `n` places ahead */
  ahead(n: number): Token | undefined {
    return this.toks[this.i + n];
  }
  atEnd(): boolean {
    return this.i >= this.toks.length;
  }

  /** An attribute or domain name: an identifier that is not a keyword, or back-quoted. */
  name(): string {
    const t = this.next();
    if (t.t === 'name') return t.v;
    if (t.t === 'word' && !KEYWORDS.has(t.v.toLowerCase())) return t.v;
    throw invalid(`Expected a name but found '${t.v}'.`);
  }
  literal(): string {
    const t = this.next();
    if (t.t !== 'str') throw invalid(`Expected a quoted value but found '${t.v}'.`);
    return t.v;
  }
  /** `itemName()` when the next tokens are it (the function name is case-insensitive). */
  itemNameCall(): boolean {
    const t = this.peek();
    if (t?.t !== 'word' || t.v.toLowerCase() !== 'itemname' || this.toks[this.i + 1]?.v !== '(') return false;
    this.i++;
    this.punct('(');
    this.punct(')');
    return true;
  }
  operand(): Operand {
    if (this.itemNameCall()) return { kind: 'itemName' };
    if (this.isWord('every')) {
      this.i++;
      this.punct('(');
      const name = this.name();
      this.punct(')');
      return { kind: 'attr', name, every: true };
    }
    return { kind: 'attr', name: this.name() };
  }
}

function parseOutput(p: Parser): Output {
  if (p.isPunct('*')) {
    p.next();
    return { kind: 'all' };
  }
  if (p.itemNameCall()) return { kind: 'itemName' };
  if (p.isWord('count') && p.ahead(1)?.v === '(') {
    p.next();
    p.punct('(');
    p.punct('*');
    p.punct(')');
    return { kind: 'count' };
  }
  const names = [p.name()];
  while (p.isPunct(',')) {
    p.next();
    names.push(p.name());
  }
  return { kind: 'attrs', names };
}

function parsePredicate(p: Parser): Expr {
  const operand = p.operand();
  const t = p.next();
  if (t.t === 'punct' && ['=', '!=', '<', '>', '<=', '>='].includes(t.v))
    return { op: 'cmp', operand, cmp: t.v as Cmp, value: p.literal() };
  const w = t.t === 'word' ? t.v.toLowerCase() : '';
  if (w === 'like') return { op: 'like', operand, not: false, pattern: p.literal() };
  if (w === 'not') {
    p.word('like');
    return { op: 'like', operand, not: true, pattern: p.literal() };
  }
  if (w === 'is') {
    const not = p.isWord('not');
    if (not) p.next();
    p.word('null');
    return { op: 'null', operand, not };
  }
  if (w === 'between') {
    const lo = p.literal();
    p.word('and');
    return { op: 'between', operand, lo, hi: p.literal() };
  }
  if (w === 'in') return { op: 'in', operand, values: parseList(p) };
  throw invalid(`Unsupported operator '${t.v}'.`);
}

function parseList(p: Parser): string[] {
  p.punct('(');
  const values = [p.literal()];
  while (p.isPunct(',')) {
    p.next();
    values.push(p.literal());
  }
  p.punct(')');
  return values;
}

function parseFactor(p: Parser): Expr {
  if (p.isWord('not')) {
    p.next();
    return { op: 'not', expr: parseFactor(p) };
  }
  if (p.isPunct('(')) {
    p.next();
    const e = parseExpr(p);
    p.punct(')');
    return e;
  }
  return parsePredicate(p);
}

function parseExpr(p: Parser): Expr {
  let left = parseTerm(p);
  while (p.isWord('or')) {
    p.next();
    left = { op: 'or', left, right: parseTerm(p) };
  }
  return left;
}

function parseTerm(p: Parser): Expr {
  let left = parseFactor(p);
  while (p.isWord('and')) {
    p.next();
    left = { op: 'and', left, right: parseFactor(p) };
  }
  if (p.isWord('intersection')) throw invalid("'intersection' is not supported by this test server.");
  return left;
}

function parseTail(p: Parser, q: Query): void {
  if (p.isWord('order')) {
    p.next();
    p.word('by');
    const operand = p.operand();
    const desc = p.isWord('desc');
    if (desc || p.isWord('asc')) p.next();
    q.orderBy = { operand, desc };
  }
  if (p.isWord('limit')) {
    p.next();
    const t = p.next();
    const n = Number(t.v);
    if (t.t !== 'num' || n < 1 || n > 2500) throw invalid(`The limit must be a number from 1 to 2500, not '${t.v}'.`);
    q.limit = n;
  }
  if (!p.atEnd()) throw invalid(`Unexpected '${p.peek()!.v}'.`);
}

export function parseSelect(expression: string): Query {
  const p = new Parser(tokenize(expression));
  p.word('select');
  const output = parseOutput(p);
  p.word('from');
  const q: Query = { output, domain: p.name() };
  if (p.isWord('where')) {
    p.next();
    q.where = parseExpr(p);
  }
  parseTail(p, q);
  if (q.orderBy && !sortable(q.where, q.orderBy.operand))
    throw sdbError(
      'InvalidSortExpression',
      'Invalid sort expression. The sort attribute must be present in at least one of the predicates, and the predicate cannot contain the is null operator.',
    );
  return q;
}

function sameOperand(a: Operand, b: Operand): boolean {
  return a.kind === b.kind && (a.kind === 'itemName' || (b.kind === 'attr' && a.name === b.name));
}

function sortable(e: Expr | undefined, o: Operand): boolean {
  if (e === undefined) return o.kind === 'itemName';
  switch (e.op) {
    case 'and':
    case 'or':
      return sortable(e.left, o) || sortable(e.right, o);
    case 'not':
      return sortable(e.expr, o);
    case 'null':
      return false;
    default:
      return sameOperand(e.operand, o);
  }
}

function valuesOf(o: Operand, item: string, attrs: Attrs): string[] {
  return o.kind === 'itemName' ? [item] : (attrs.get(o.name) ?? []);
}

function likeRegex(pattern: string): RegExp {
  const body = pattern
    .split('%')
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 's');
}

function test(e: Exclude<Expr, { op: 'and' | 'or' | 'not' | 'null' }>, v: string): boolean {
  switch (e.op) {
    case 'cmp': {
      const c = byteOrder(v, e.value);
      return { '=': c === 0, '!=': c !== 0, '<': c < 0, '>': c > 0, '<=': c <= 0, '>=': c >= 0 }[e.cmp];
    }
    case 'like':
      return likeRegex(e.pattern).test(v) !== e.not;
    case 'between':
      return byteOrder(v, e.lo) >= 0 && byteOrder(v, e.hi) <= 0;
    case 'in':
      return e.values.includes(v);
  }
}

/** Whether an item satisfies the expression. */
export function matches(e: Expr | undefined, item: string, attrs: Attrs): boolean {
  if (e === undefined) return true;
  switch (e.op) {
    case 'and':
      return matches(e.left, item, attrs) && matches(e.right, item, attrs);
    case 'or':
      return matches(e.left, item, attrs) || matches(e.right, item, attrs);
    case 'not':
      return !matches(e.expr, item, attrs);
    case 'null':
      return (valuesOf(e.operand, item, attrs).length === 0) !== e.not;
    default: {
      const vs = valuesOf(e.operand, item, attrs);
      if (e.operand.kind === 'attr' && e.operand.every) return vs.length > 0 && vs.every((v) => test(e, v));
      return vs.some((v) => test(e, v));
    }
  }
}

/** The sort key of an item for `order by` (the first value of a multi-valued attribute). */
export function sortKey(o: Operand, item: string, attrs: Attrs): string {
  return valuesOf(o, item, attrs)[0] ?? '';
}
