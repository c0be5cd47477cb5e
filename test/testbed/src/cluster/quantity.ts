/**
 * Exact quantity arithmetic for quota and limit ranges: a quantity as a count of nano-units (a
 * BigInt, as resource.Quantity is exact) and whether it is written in binary (Ki, Mi, …), so that
 * sums print as the API server prints them (`1536Mi`, `1500m`, `2`).
 */
import { canonicalQuantity } from './validate.js';

export interface Amount {
  nano: bigint;
  binary: boolean;
}

const NANO = 10n ** 9n;
const BIN = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** A quantity string (or number) as an amount; undefined when it is not one. */
export function amount(q: unknown): Amount | undefined {
  const c = canonicalQuantity(q);
  if (typeof c !== 'string') return undefined;
  const m = /^(-?\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/.exec(c);
  if (!m) return undefined;
  const n = BigInt(m[1]!);
  const suffix = m[2] ?? '';
  const bi = BIN.indexOf(suffix);
  if (bi >= 0) return { nano: n * 1024n ** BigInt(bi + 1) * NANO, binary: true };
  const exp: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
  const e = exp[suffix]! + 9;
  return { nano: n * 10n ** BigInt(e), binary: false };
}

/** The canonical string of an amount. */
export function formatAmount(a: Amount): string {
  if (a.binary && a.nano % NANO === 0n) {
    const bytes = a.nano / NANO;
    if (bytes % 1024n === 0n && bytes !== 0n) return String(canonicalQuantity(`${bytes / 1024n}Ki`));
  }
  return String(canonicalQuantity(`${a.nano}n`));
}

/** a + b, in a's format (b's when a is absent), as resource.Quantity.Add keeps the receiver's. */
export function addAmounts(a: Amount | undefined, b: Amount): Amount {
  return a ? { nano: a.nano + b.nano, binary: a.binary } : { ...b };
}

export const compareAmounts = (a: Amount, b: Amount): number => (a.nano < b.nano ? -1 : a.nano > b.nano ? 1 : 0);

/** A resource list (name → quantity) as amounts, skipping what does not parse. */
export function amounts(list: Record<string, unknown> | undefined): Map<string, Amount> {
  const out = new Map<string, Amount>();
  for (const [k, v] of Object.entries(list ?? {})) {
    const a = amount(v);
    if (a) out.set(k, a);
  }
  return out;
}

/** A resource list as the API server prints one in an error: `k=v,k=v`, sorted by name. */
export function prettyList(list: Map<string, Amount>): string {
  return [...list.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${formatAmount(v)}`)
    .join(',');
}
