/** A job argument that JSON cannot carry. */
import { defineJob, type WorkflowContext } from 'toil-ts';

const when = defineJob('when', async (_ctx, d: Date) => String(d));

export default function workflow(_wf: WorkflowContext) {
  return when(new Date(0));
}
