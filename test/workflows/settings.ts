/** Reports the settings a job runs with: its requirements (from --default*) and its temp dir (under --workDir). */
import { defineJob, type JobContext } from 'toil-ts';

const report = defineJob('report', async (ctx: JobContext) => ({
  cores: ctx.requirements.cores,
  memory: ctx.requirements.memory,
  tmp: await ctx.fileStore.localTempDir(),
}));

export default function workflow() {
  return report();
}
