/** Query parameters as the real API server reads them. */

/**
 * A boolean query parameter as the real server reads one: absent, `false` (any case) or `0` is
 * false; any other value, the empty one included, is true (clients send `true`, `True`, `1`).
 */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}
