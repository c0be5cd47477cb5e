/**
 * `--stats` and `--trace` for one run of a workflow: workers measure every attempt when either
 * is given; the leader's account (leader/statsRecorder.ts) writes the trace as attempts end and,
 * with `--stats`, keeps the records in the job store. At the end of a run with `--stats`, before
 * `--clean` may delete the store, the whole account is also written as one file next to the run
 * (`statsFilePath`): a store deleted on success still leaves its statistics behind, and a kept
 * store holds them too. `toil stats` and `toil report` read either.
 */
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { checkWritable, writeWhole } from '../outputFile.js';
import { parseLocator } from '../jobstore/locator.js';
import type { JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import { StatsRecorder } from '../leader/statsRecorder.js';
import { TraceFile } from '../leader/trace.js';
import type { ToilConfig } from './config.js';

/** Whether workers measure their jobs in this run. */
export function measuring(config: Pick<ToilConfig, 'stats' | 'trace'>): boolean {
  return config.stats || config.trace !== undefined;
}

/** Where `--stats` writes its file: beside a directory store, else in the current directory. */
export function statsFilePath(locator: string): string {
  const l = parseLocator(locator);
  return l.kind === 'file' ? `${l.path}.stats.json` : path.resolve(`${l.name}.stats.json`);
}

/** A trace file that cannot be written is bad usage, found before anything is created. */
export async function checkTraceFile(file: string | undefined): Promise<void> {
  if (file !== undefined) await checkWritable(file, `--trace ${file}`);
}

/** The account of this run, when it measures; its trace opened and earlier runs' records found. */
export async function openRunStats(
  config: Pick<ToilConfig, 'stats' | 'trace' | 'batchSystem'>,
  o: { store: JobStore; workflowId: string; workflowFile: string; log: Logger },
): Promise<StatsRecorder | undefined> {
  if (!measuring(config)) return undefined;
  const trace = config.trace !== undefined ? await TraceFile.open(config.trace) : undefined;
  const recorder = new StatsRecorder({ ...o, batchSystem: config.batchSystem, keep: config.stats, trace });
  await recorder.load();
  return recorder;
}

/** Ends the account: every attempt written; with --stats, the stats file written (whole, or not at all). */
export async function closeRunStats(recorder: StatsRecorder | undefined, o: { ok: boolean; locator: string; log: Logger }): Promise<void> {
  if (!recorder) return;
  await recorder.close(o.ok);
  try {
    const data = await recorder.read();
    if (!data) return;
    const file = statsFilePath(o.locator);
    await writeWhole(file, JSON.stringify(data));
    o.log.info(`statistics of ${data.attempts.length} attempt(s) written to ${file} (see 'toil stats' and 'toil report')`);
  } catch (e) {
    o.log.warning(`cannot write the statistics file: ${errorMessage(e)}`);
  }
}
