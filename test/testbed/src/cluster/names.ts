/** Generated names and timestamps as the API server writes them. */
import { randomBytes } from 'node:crypto';

/** An RFC 3339 timestamp with second precision, as metadata timestamps are. */
export const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
/** The alphabet and length of generateName suffixes (no vowels, no look-alike digits). */
const ALNUM = 'bcdfghjklmnpqrstvwxz2456789';
export function randSuffix(n = 5): string {
  const b = randomBytes(n);
  return [...b].map((x) => ALNUM[x % ALNUM.length]).join('');
}
