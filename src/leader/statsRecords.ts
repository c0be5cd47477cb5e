/**
 * A workflow's statistics as `--stats` keeps them: one record per attempt (what the batch
 * system and the worker measured, joined by the leader) and the timeline of each leader's run.
 *
 * In the job store: `stats.json` (the header: the runs and how many chunks there are) and
 * `stats-<n>.jsonl` (attempt records, one JSON object a line, written as they accumulate, so
 * that no write grows with the run). A restarted workflow goes on from the header it finds. As
 * one file (`--stats` writes it next to the run; `toil stats` and `toil report` read either):
 * the header's fields and every attempt, in one JSON object.
 */
import { z } from 'zod';
import { mapLimit } from '../concurrency.js';
import { CacheStatsSchema, WorkerMeasuresSchema, parseStored } from '../jobstore/records.js';
import type { JobStore } from '../jobstore/types.js';

export const STATS_HEADER = 'stats.json';
export const STATS_FORMAT = 'toil-ts-stats/1';

export const statsChunkName = (n: number): string => `stats-${n}.jsonl`;

const ResourcesSchema = z.object({ cores: z.number(), memory: z.number(), disk: z.number() });

export const AttemptStatsSchema = z.object({
  jobId: z.string(),
  jobName: z.string(),
  /** 1 for a job's first attempt in this leader's run, and so on. */
  attempt: z.number(),
  batchJobId: z.number(),
  /** `succeeded`, or how the attempt failed (the batch system's outcome: failed, memory, preempted, …). */
  status: z.string(),
  exitCode: z.number().nullable(),
  message: z.string().optional(),
  /** When the leader issued its batch job and learnt of its end, in ms since the epoch. */
  issuedAt: z.number(),
  endedAt: z.number(),
  requested: ResourcesSchema,
  /** Measured by the worker (absent when it died first). */
  wallSeconds: z.number().optional(),
  cpuSeconds: z.number().optional(),
  peakRss: z.number().optional(),
  measured: WorkerMeasuresSchema.optional(),
  cache: CacheStatsSchema.optional(),
  /** From the batch system: where it ran and, on Kubernetes, the pod's phases. */
  place: z
    .object({
      node: z.string().optional(),
      pod: z.string().optional(),
      pid: z.number().optional(),
      phases: z
        .object({
          created: z.number().optional(),
          scheduled: z.number().optional(),
          initialized: z.number().optional(),
          started: z.number().optional(),
          finished: z.number().optional(),
        })
        .optional(),
    })
    .optional(),
  /** A failed attempt's last log lines. */
  logTail: z.string().optional(),
});
export type AttemptStats = z.infer<typeof AttemptStatsSchema>;

export const StatsRunSchema = z.object({
  leaderStart: z.number(),
  firstIssue: z.number().optional(),
  end: z.number().optional(),
  ok: z.boolean().optional(),
});
export type StatsRun = z.infer<typeof StatsRunSchema>;

const HeaderFields = {
  format: z.literal(STATS_FORMAT),
  workflowId: z.string(),
  workflowFile: z.string().optional(),
  batchSystem: z.string().optional(),
  runs: z.array(StatsRunSchema),
};
export const StatsHeaderSchema = z.object({ ...HeaderFields, chunks: z.number() });
export type StatsHeader = z.infer<typeof StatsHeaderSchema>;

export const StatsDataSchema = z.object({ ...HeaderFields, attempts: z.array(AttemptStatsSchema) });
export type StatsData = z.infer<typeof StatsDataSchema>;

/** The header a leader saved, if any. */
export async function readStatsHeader(store: JobStore): Promise<StatsHeader | undefined> {
  const got = await store.readShared(STATS_HEADER);
  return got ? parseStored(StatsHeaderSchema, got.value, `${store.locator}: ${STATS_HEADER}`) : undefined;
}

/** Everything the store keeps, or undefined when the workflow was not run with --stats. */
export async function readStoredStats(store: JobStore): Promise<StatsData | undefined> {
  const header = await readStatsHeader(store);
  if (!header) return undefined;
  const chunks = await mapLimit(
    Array.from({ length: header.chunks }, (_, i) => i),
    16,
    async (i) => {
      const got = await store.readShared(statsChunkName(i));
      return got ? parseChunk(got.value.toString(), `${store.locator}: ${statsChunkName(i)}`) : [];
    },
  );
  const { chunks: _, ...rest } = header;
  return { ...rest, attempts: chunks.flat() };
}

function parseChunk(text: string, what: string): AttemptStats[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l, i) => parseStored(AttemptStatsSchema, l, `${what} line ${i + 1}`));
}
