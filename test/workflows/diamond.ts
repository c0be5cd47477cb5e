/**
 * Failure in a diamond: A has children B and C; D is a child of both B and C. B fails, so D
 * never runs, while C (independent of B) still runs.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

const node = defineJob('node', async (_ctx: JobContext, dir: string, name: string, fail: boolean) => {
  trace(dir, `run ${name}`);
  if (fail) {
    console.error(`node ${name}: something went wrong here`);
    throw new Error(`${name} failed on purpose`);
  }
  return name;
});

export default function workflow(wf: WorkflowContext) {
  const dir = wf.args[0]!;
  const a = node(dir, 'A', false);
  const b = a.addChild(node(dir, 'B', true));
  const c = a.addChild(node(dir, 'C', false));
  const d = b.addChild(node(dir, 'D', false));
  c.addChild(d);
  a.addFollowOn(node(dir, 'F', false));
  return a;
}
