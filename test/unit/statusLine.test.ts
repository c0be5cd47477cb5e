import { describe, expect, it } from '@jest/globals';
import { statusLine } from '../../src/leader/progress.js';

describe('the status line', () => {
  const counts = { done: 15, running: 0, queued: 1, failed: 1, total: 18 };

  it('keeps its form when nothing waits and nothing is said', () => {
    expect(statusLine({ done: 1, running: 0, queued: 0, failed: 0, total: 1 }, 500)).toBe(
      'jobs: 1 done, 0 running, 0 queued, 0 failed (of 1) · 0.5s',
    );
  });

  it('counts jobs not ready yet apart from queued ones, and says what the queued ones wait for', () => {
    expect(statusLine({ ...counts, waiting: 1 }, 602_000, '1 waiting for a pod')).toBe(
      'jobs: 15 done, 0 running, 1 queued, 1 waiting, 1 failed (of 18) · 10m02s · queued: 1 waiting for a pod',
    );
  });

  it('says nothing of waiting when nothing is queued, and clips a long account', () => {
    expect(statusLine({ ...counts, queued: 0 }, 1000, 'x')).not.toContain('queued: x');
    const line = statusLine(counts, 1000, 'y'.repeat(1000));
    expect(line.length).toBeLessThan(320);
    expect(line.endsWith('…')).toBe(true);
  });
});
