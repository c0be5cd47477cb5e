/**
 * Reading the Query API's parameters as SimpleDB does: required ones, booleans, the numbered
 * lists (`Attribute.N.Name`, `Item.N.ItemName`, `Expected.N.Value`, …) and the size limits
 * (1,024 bytes for item names, attribute names and values).
 */
import { sdbError } from './xml.js';

export type Params = Map<string, string>;

export const MAX_NAME_BYTES = 1024;

export function required(p: Params, name: string): string {
  const v = p.get(name);
  if (v === undefined) throw sdbError('MissingParameter', `The request must contain the parameter ${name}`);
  return v;
}

export function booleanParam(p: Params, name: string): boolean {
  const v = p.get(name);
  if (v === undefined) return false;
  if (v.toLowerCase() === 'true') return true;
  if (v.toLowerCase() === 'false') return false;
  throw sdbError('InvalidParameterValue', `Value (${v}) for parameter ${name} is invalid. Boolean value expected.`);
}

function shown(v: string): string {
  return v.length > 64 ? `${v.slice(0, 64)}…` : v;
}

/** Checks the 1,024-byte limit of names and values. */
export function checkLength(param: string, v: string): string {
  if (Buffer.byteLength(v, 'utf8') > MAX_NAME_BYTES)
    throw sdbError(
      'InvalidParameterValue',
      `Value (${shown(v)}) for parameter ${param} is invalid. Value exceeds maximum length of ${MAX_NAME_BYTES}.`,
    );
  return v;
}

/** `Prefix.N.rest` parameters grouped by N (in numeric order), each group keyed by `rest`. */
export function numbered(p: Params, prefix: string): Params[] {
  const groups = new Map<number, Params>();
  for (const [k, v] of p) {
    if (!k.startsWith(prefix + '.')) continue;
    const m = /^(\d+)\.(.+)$/.exec(k.slice(prefix.length + 1));
    if (!m) continue;
    const n = Number(m[1]);
    const g = groups.get(n) ?? new Map<string, string>();
    g.set(m[2]!, v);
    groups.set(n, g);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, g]) => g);
}

export interface PutAttr {
  name: string;
  value: string;
  replace: boolean;
}

export function putAttributes(p: Params): PutAttr[] {
  return numbered(p, 'Attribute').map((g) => {
    const name = g.get('Name');
    const value = g.get('Value');
    if (name === undefined) throw sdbError('MissingParameter', `Attribute.Name missing for Attribute.Value='${shown(value ?? '')}'.`);
    if (value === undefined) throw sdbError('MissingParameter', `Attribute.Value missing for Attribute.Name='${shown(name)}'.`);
    return { name: checkLength('Name', name), value: checkLength('Value', value), replace: booleanParam(g, 'Replace') };
  });
}

export interface DeleteAttr {
  name: string;
  value?: string;
}

export function deleteAttributes(p: Params): DeleteAttr[] {
  return numbered(p, 'Attribute').map((g) => {
    const name = g.get('Name');
    const value = g.get('Value');
    if (name === undefined) throw sdbError('MissingParameter', `Attribute.Name missing for Attribute.Value='${shown(value ?? '')}'.`);
    return value === undefined ? { name } : { name, value };
  });
}

export interface Expected {
  name: string;
  value?: string;
  exists: boolean;
}

/** The one `Expected` condition (`Expected.Name` or `Expected.1.Name`, …), if any. */
export function expected(p: Params): Expected | undefined {
  const flat = new Map([...p].filter(([k]) => /^Expected\.(Name|Value|Exists)$/.test(k)).map(([k, v]) => [k.slice(9), v]));
  const groups = [...(flat.size > 0 ? [flat] : []), ...numbered(p, 'Expected')];
  if (groups.length === 0) return undefined;
  if (groups.length > 1) throw sdbError('MultipleExpectedNames', 'Only one Expected.Name can be specified');
  const g = groups[0]!;
  const name = g.get('Name');
  if (name === undefined) throw sdbError('MissingParameter', 'The request must contain the parameter Expected.Name');
  const exists = g.has('Exists') ? booleanParam(g, 'Exists') : true;
  const value = g.get('Value');
  if (!exists && value !== undefined)
    throw sdbError('ExistsAndExpectedValue', 'Expected.Exists=false and Expected.Value cannot be specified together');
  if (exists && value === undefined)
    throw sdbError('IncompleteExpectedExpression', 'If Expected.Exists=True or unspecified, then Expected.Value has to be specified');
  return value === undefined ? { name, exists } : { name, value, exists };
}
