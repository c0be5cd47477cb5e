/**
 * Sizes as people write them: a number of bytes, or a string with a unit. Decimal units
 * (`K`, `M`, `G`, `T`, also `KB`…) are powers of 1000 and binary units (`Ki`, `Mi`, `Gi`, `Ti`,
 * also `KiB`…) powers of 1024, as Kubernetes quantities are. `B` or no unit means bytes.
 */
import { UsageError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  p: 1e15,
  pb: 1e15,
  ki: 2 ** 10,
  kib: 2 ** 10,
  mi: 2 ** 20,
  mib: 2 ** 20,
  gi: 2 ** 30,
  gib: 2 ** 30,
  ti: 2 ** 40,
  tib: 2 ** 40,
  pi: 2 ** 50,
  pib: 2 ** 50,
};

/** A size in bytes, or a string such as `'512M'`, `'2Gi'`, `'3G'`, `'1.5GiB'`. */
export type Size = number | string;

/**
 * Parses a size into a whole number of bytes (rounded up). Throws a `UsageError` naming the
 * value when it is not a size.
 */
export function parseSize(value: Size): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new UsageError(`not a size: ${value} (expected bytes ≥ 0)`);
    return Math.ceil(value);
  }
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(`not a size: '${value}' (expected e.g. 512M, 2Gi, 3G or a number of bytes)`);
  }
  return Math.ceil(Number(m[1]) * unit);
}

/** Formats bytes for people: `2.0 GiB`, `512 MiB`, `17 B`. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}
