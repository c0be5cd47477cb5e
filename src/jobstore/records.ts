import { z } from 'zod';
import { JobStoreError } from '../errors.js';
import { JobRecordSchema, type JobRecord } from '../job/types.js';
import type { ChannelMessage } from './types.js';

/**
 * The one way to read JSON that a job store holds (records, messages, workflow.json, the lease,
 * markers): parsed and validated, and a corrupt or foreign one is a JobStoreError naming `what`
 * and what is wrong with it.
 */
export function parseStored<S extends z.ZodType>(schema: S, data: Buffer | string, what: string): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(data.toString());
  } catch (e) {
    throw new JobStoreError('JOBSTORE', `${what} is corrupt: not JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new JobStoreError(
      'JOBSTORE',
      `${what} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** Parses and validates a stored job record. */
export function parseRecord(data: Buffer | string, what: string): JobRecord {
  return parseStored(JobRecordSchema, data, `${what}: stored record`) as JobRecord;
}

export const CacheStatsSchema = z.object({ hits: z.number(), misses: z.number(), hitBytes: z.number(), missBytes: z.number() });

export const WorkerMeasuresSchema = z.object({
  startedAt: z.number(),
  childCpuSeconds: z.number(),
  peakScope: z.enum(['job', 'process']),
  readBytes: z.number(),
  writtenBytes: z.number(),
  diskBytes: z.number(),
  host: z.string(),
  pid: z.number(),
  ok: z.boolean(),
});

const ChannelMessageSchema = z.object({
  kind: z.enum(['log', 'stats', 'failure']),
  level: z.enum(['warning']).optional(),
  jobId: z.string(),
  jobName: z.string(),
  text: z.string().optional(),
  stack: z.string().optional(),
  wallSeconds: z.number().optional(),
  cpuSeconds: z.number().optional(),
  peakRss: z.number().optional(),
  cache: CacheStatsSchema.optional(),
  measured: WorkerMeasuresSchema.optional(),
  at: z.number(),
});

export function parseMessage(data: Buffer | string): ChannelMessage {
  return parseStored(ChannelMessageSchema, data, 'a channel message');
}
