/**
 * --stats in worker pods on the test cluster: the known work of test/workflows/measured.ts
 * measured within the tolerances of test/helpers/measured.ts, and each attempt's pod, node and
 * phases (created ≤ scheduled ≤ initialized ≤ started ≤ finished) from the pod's own status.
 */
import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { tempDir, toil, workflow } from '../helpers/run.js';
import { expectKnownWork, readStatsFile } from '../helpers/measured.js';
import { useK8sEnv } from './useK8sEnv.js';

const k = useK8sEnv();

describe('--stats on Kubernetes', () => {
  it('measures known work in worker pods, with each pod, its node and its phases', async () => {
    const { dir, cleanup } = await tempDir('toil-k8s-stats-');
    try {
      const locator = k.locator();
      const trace = path.join(dir, 'trace.tsv');
      const r = await toil(
        ['run', workflow('measured.ts'), locator, '--batchSystem', 'kubernetes', '--stats', '--trace', trace, '--no-typecheck'],
        {
          env: k.env,
          cwd: dir,
        },
      );
      expect(r.stderr).toContain('statistics of 5 attempt(s) written to');
      expect(r.code).toBe(0);
      // an aws: store's stats file goes to the current directory, named after the store
      const data = await readStatsFile(path.join(dir, `${locator.split(':')[2]}.stats.json`));
      expectKnownWork(data);
      expect(data.batchSystem).toBe('kubernetes');
      for (const a of data.attempts) {
        const p = a.place!;
        expect(p.node).toMatch(/^node-[12]$/);
        expect(p.pod).toMatch(/^toil-demouser-/);
        const ph = p.phases!;
        for (const k of ['created', 'scheduled', 'initialized', 'started', 'finished'] as const)
          expect({ [k]: ph[k] }).toEqual({ [k]: expect.any(Number) });
        // each phase no earlier than the one before it
        const order = [ph.created!, ph.scheduled!, ph.initialized!, ph.started!, ph.finished!];
        const unordered = order.flatMap((at, i) => (i > 0 && at < order[i - 1]! ? [i] : []));
        expect({ phases: ph, unordered }).toEqual({ phases: ph, unordered: [] });
        expect(ph.created!).toBeGreaterThanOrEqual(Math.floor(a.issuedAt / 1000) * 1000);
        // the worker's own clock starts within the container's run
        expect(a.measured!.startedAt).toBeGreaterThanOrEqual(ph.started! - 1000);
      }
    } finally {
      await cleanup();
    }
  }, 120_000);
});
