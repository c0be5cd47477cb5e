/**
 * Ordering: root has static children A and B and a follow-on F. A adds dynamic children A1, A2
 * (A2 has its own follow-on A2f). F must start after A, B, A1, A2 and A2f all ended.
 */
import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
import { trace } from './trace.js';

const step = defineJob('step', async (ctx: JobContext, dir: string, name: string, delayMs: number) => {
  trace(dir, `start ${name}`);
  await new Promise((r) => setTimeout(r, delayMs));
  if (name === 'A') {
    ctx.addChild(step(dir, 'A1', 150));
    const a2 = ctx.addChild(step(dir, 'A2', 50));
    a2.addFollowOn(step(dir, 'A2f', 100));
  }
  trace(dir, `end ${name}`);
  return name;
});

export default function workflow(wf: WorkflowContext) {
  const dir = wf.args[0]!;
  const root = step(dir, 'root', 0);
  root.addChild(step(dir, 'A', 50));
  root.addChild(step(dir, 'B', 10));
  root.addFollowOn(step(dir, 'F', 0));
  return root;
}
