/**
 * The arguments of the test workflows, by name, so that a test reads as what it passes:
 * `toil(['run', workflow('slow.ts'), store, ...naps({ traceDir, count: 2, napMs: 6000 })])`.
 * Each builder returns the `--` and the positional arguments the workflow's default export reads.
 */
import { workflow } from '../helpers/run.js';

/** slow.ts: `count` jobs that each sleep `napMs`, tracing into `traceDir`. */
export function naps(o: { traceDir: string; count: number; napMs: number }): string[] {
  return ['--', o.traceDir, String(o.count), String(o.napMs)];
}

/** flaky.ts: one job that fails every attempt. */
export function alwaysFails(o: { traceDir: string }): string[] {
  return ['--', o.traceDir, 'always'];
}

/** flaky.ts: one job that fails its first `times` attempts, then succeeds. */
export function failsFirst(o: { traceDir: string; times: number }): string[] {
  return ['--', o.traceDir, 'flaky', String(o.times)];
}

/** `toil run slow.ts` on the Kubernetes batch system: `naps(o)`, with `flags` (options) before them. */
export function napsOnKubernetes(store: string, o: { traceDir: string; count: number; napMs: number; flags?: string[] }): string[] {
  return ['run', workflow('slow.ts'), store, '--batchSystem', 'kubernetes', ...(o.flags ?? []), ...naps(o)];
}

/** gated.ts: a root held at a gate until the file 'go' appears in `traceDir`. */
export function gated(o: { traceDir: string }): string[] {
  return ['--', o.traceDir];
}
