/** Mistakes in building the graph that are bad input (exit 2): wf.args[0] picks one. */
import { defineJob, Job, type JobContext, type WorkflowContext } from 'toil-ts';

const j = defineJob('j', async (_ctx: JobContext) => 1);

class Unregistered extends Job<number> {
  async run(_ctx: JobContext): Promise<number> {
    return 1;
  }
}

export default function workflow(wf: WorkflowContext) {
  if (wf.args[0] === 'memory') return j().require({ memory: '2 gigs' });
  const root = j();
  root.addChild(new Unregistered());
  return root;
}
