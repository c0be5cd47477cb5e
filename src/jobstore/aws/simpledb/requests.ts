/**
 * The Query API parameters of SimpleDB's operations (API version 2009-04-15): numbered lists
 * from 1 (`Attribute.1.Name`, `Item.2.Attribute.1.Value`, `AttributeName.3`), booleans as
 * `true`, one `Expected` condition as `Expected.1.*`.
 */
import type { SdbDeleteAttribute, SdbExpected, SdbPutAttribute } from './types.js';

export type Params = Record<string, string>;

export function putParams(attributes: readonly SdbPutAttribute[], prefix = ''): Params {
  const p: Params = {};
  attributes.forEach((a, i) => {
    p[`${prefix}Attribute.${i + 1}.Name`] = a.name;
    p[`${prefix}Attribute.${i + 1}.Value`] = a.value;
    if (a.replace) p[`${prefix}Attribute.${i + 1}.Replace`] = 'true';
  });
  return p;
}

export function deleteParams(attributes: readonly SdbDeleteAttribute[] | undefined, prefix = ''): Params {
  const p: Params = {};
  (attributes ?? []).forEach((a, i) => {
    p[`${prefix}Attribute.${i + 1}.Name`] = a.name;
    if (a.value !== undefined) p[`${prefix}Attribute.${i + 1}.Value`] = a.value;
  });
  return p;
}

export function expectedParams(e: SdbExpected | undefined): Params {
  if (e === undefined) return {};
  if ('exists' in e) return { 'Expected.1.Name': e.name, 'Expected.1.Exists': 'false' };
  return { 'Expected.1.Name': e.name, 'Expected.1.Value': e.value };
}

/** `Item.N.ItemName` and each item's own parameters under `Item.N.`. */
export function batchParams<T extends { name: string }>(items: readonly T[], each: (item: T, prefix: string) => Params): Params {
  const p: Params = {};
  items.forEach((item, i) => {
    const prefix = `Item.${i + 1}.`;
    p[`${prefix}ItemName`] = item.name;
    Object.assign(p, each(item, prefix));
  });
  return p;
}

export function namesParams(names: readonly string[] | undefined): Params {
  return Object.fromEntries((names ?? []).map((n, i) => [`AttributeName.${i + 1}`, n]));
}

export function consistentParam(consistentRead: boolean | undefined): Params {
  return consistentRead ? { ConsistentRead: 'true' } : {};
}
