/** Two jobs, each a child of the other: a cycle the graph check must refuse, naming both. */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';

const s = defineJob('s', async (_ctx: JobContext, name: string, n: number) => `${name}${n}`);

export default function workflow(_wf: WorkflowContext) {
  const a = s('a', 1);
  const b = s('b', 2);
  a.addChild(b);
  b.addChild(a);
  return a;
}
