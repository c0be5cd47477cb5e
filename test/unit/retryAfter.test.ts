import { describe, expect, it } from '@jest/globals';
import { apiCall, apiErrorInfo } from '../../src/batch/kubeRetry.js';
import { RateLimiter } from '../../src/batch/rateLimiter.js';
import { parseHttpDate, retryAfterMs } from '../../src/httpDate.js';

const NOW = Date.UTC(2026, 10, 29, 10, 0, 0); // Sun, 29 Nov 2026 10:00:00 GMT

describe('Retry-After', () => {
  it('reads delta-seconds', () => {
    expect(retryAfterMs('0', NOW)).toBe(0);
    expect(retryAfterMs('120', NOW)).toBe(120_000);
    expect(retryAfterMs(' 7 ', NOW)).toBe(7000);
  });
  it('reads an HTTP date in each of the three formats as the time until it', () => {
    expect(retryAfterMs('Sun, 29 Nov 2026 10:00:30 GMT', NOW)).toBe(30_000);
    expect(retryAfterMs('Sunday, 29-Nov-26 10:01:00 GMT', NOW)).toBe(60_000);
    expect(retryAfterMs('Sun Nov 29 10:00:05 2026', NOW)).toBe(5000);
    expect(retryAfterMs('Tue Dec  1 10:00:00 2026', NOW)).toBe(2 * 86_400_000);
  });
  it('waits not at all for a date already past', () => {
    expect(retryAfterMs('Sat, 28 Nov 2026 10:00:00 GMT', NOW)).toBe(0);
  });
  it('reads a two-digit year more than 50 years ahead as in the past', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Monday, 06-Nov-30 08:49:37 GMT', NOW)).toBe(Date.UTC(2030, 10, 6, 8, 49, 37));
  });
  it('ignores what is neither', () => {
    for (const v of ['', 'soon', '-1', '1.5', '2026-11-29T10:00:30Z', 'Sun, 31 Feb 2026 10:00:00 GMT', 'Sun, 29 Nov 2026 10:00:30 CET']) {
      expect([v, retryAfterMs(v, NOW)]).toEqual([v, undefined]);
    }
  });
  it('gives the floor of an API retry, as delta-seconds or as an HTTP date', () => {
    const inSeconds = apiErrorInfo({ code: 429, headers: { 'retry-after': '3' }, message: 'HTTP 429' });
    expect(inSeconds.retryAfterMs).toBe(3000);
    const at = Math.ceil(Date.now() / 1000) * 1000 + 5000;
    const asDate = apiErrorInfo({ code: 503, headers: { 'Retry-After': new Date(at).toUTCString() }, message: 'HTTP 503' });
    expect(asDate.retryAfterMs).toBeGreaterThan(4000);
    expect(asDate.retryAfterMs).toBeLessThanOrEqual(6000);
  });
  it('waits at least until the HTTP date before retrying', async () => {
    const at = Math.ceil(Date.now() / 1000) * 1000 + 1000;
    let calls = 0;
    const delays: number[] = [];
    const t0 = Date.now();
    const got = await apiCall(
      'get something',
      new RateLimiter(1000, 100),
      async () => {
        if (calls++ === 0) throw { code: 429, headers: { 'retry-after': new Date(at).toUTCString() }, message: 'HTTP 429' };
        return 'ok';
      },
      { policy: { attempts: 3, baseMs: 1, maxMs: 1 }, onRetry: (_info, delay) => delays.push(delay) },
    );
    expect(got).toBe('ok');
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(at - t0 - 50);
    expect(Date.now()).toBeGreaterThanOrEqual(at - 5);
  });
});
