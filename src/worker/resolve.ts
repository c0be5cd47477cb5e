/**
 * Resolving promises for a job about to run: each `{"$toil.rv"}` marker is replaced by the
 * producing job's value (following forwarded promises) at the marker's path.
 */
import { ToilError } from '../errors.js';
import { decodeValue, followPath } from '../job/json.js';
import type { PromisePath } from '../job/promise.js';
import type { Json, JobRecord } from '../job/types.js';
import type { JobStore } from '../jobstore/types.js';

export class PromiseResolver {
  private readonly cache = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: JobStore,
    /** Records already at hand (e.g. the job that just finished in this worker). */
    private readonly known: Map<string, JobRecord> = new Map(),
  ) {}

  remember(record: JobRecord): void {
    this.known.set(record.id, record);
  }

  /** The full value of a job, forwarded promises resolved. */
  valueOf(jobId: string, depth = 0): Promise<unknown> {
    let p = this.cache.get(jobId);
    if (!p) {
      p = (async () => {
        if (depth > 100) throw new ToilError('INTERNAL', `promise of job ${jobId} forwards through more than 100 jobs`);
        const rec = this.known.get(jobId) ?? (await this.store.loadJob(jobId)).value;
        if (rec.state !== 'done' || rec.result === undefined) {
          throw new ToilError('INTERNAL', `the promise of job '${rec.name}' (${jobId}) is not resolved: that job has not finished`, {
            context: { jobId },
          });
        }
        return decodeValue(rec.result, (id, path) => this.resolve(id, path, depth + 1));
      })();
      this.cache.set(jobId, p);
      p.catch(() => this.cache.delete(jobId));
    }
    return p;
  }

  async resolve(jobId: string, path: PromisePath, depth = 0): Promise<unknown> {
    const v = await this.valueOf(jobId, depth);
    return followPath(v, path, `promise rv(${path.map((p) => JSON.stringify(p)).join(', ')}) of job ${jobId}`);
  }

  decode(value: Json): Promise<unknown> {
    return decodeValue(value, (id, path) => this.resolve(id, path));
  }
}
