import { z } from 'zod';
import { JobStoreError } from '../errors.js';
import { JobRecordSchema, type JobRecord } from '../job/types.js';
import type { ChannelMessage } from './types.js';

/** Parses and validates a stored job record. */
export function parseRecord(data: Buffer | string, what: string): JobRecord {
  let json: unknown;
  try {
    json = JSON.parse(data.toString());
  } catch (e) {
    throw new JobStoreError('JOBSTORE', `${what}: stored record is not JSON (${(e as Error).message})`);
  }
  const parsed = JobRecordSchema.safeParse(json);
  if (!parsed.success) {
    throw new JobStoreError('JOBSTORE', `${what}: stored record is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data as JobRecord;
}

const ChannelMessageSchema = z.object({
  kind: z.enum(['log', 'stats', 'failure']),
  jobId: z.string(),
  jobName: z.string(),
  text: z.string().optional(),
  stack: z.string().optional(),
  wallSeconds: z.number().optional(),
  cpuSeconds: z.number().optional(),
  peakRss: z.number().optional(),
  at: z.number(),
});

export function parseMessage(data: Buffer | string): ChannelMessage {
  const parsed = ChannelMessageSchema.safeParse(JSON.parse(data.toString()));
  if (!parsed.success) throw new JobStoreError('JOBSTORE', `invalid channel message: ${parsed.error.message}`);
  return parsed.data;
}
