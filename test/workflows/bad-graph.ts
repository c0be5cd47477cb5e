/** A follow-on placed under one of its own predecessor's children: it would wait for itself. */
import { defineJob, type WorkflowContext } from 'toil-ts';

const j = defineJob('j', async () => 1);

export default function workflow(_wf: WorkflowContext) {
  const a = j();
  const b = a.addChild(j());
  const f = a.addFollowOn(j());
  b.addChild(f);
  return a;
}
