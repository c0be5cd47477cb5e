/** A linear chain of jobs, each the only child of the one before: one worker runs them all. */
import { defineJob, type JobContext, type JobFactory, type JobPromise, type WorkflowContext } from 'toil-ts';

const link: JobFactory<[number, number, string], Promise<string | JobPromise<string>>> = defineJob(
  'link',
  async (ctx: JobContext, i: number, n: number, acc: string): Promise<string | JobPromise<string>> => {
    const next = `${acc}${i}`;
    if (i + 1 < n) return ctx.addChild(link(i + 1, n, next)).rv();
    return next;
  },
);

const greedy = defineJob('greedy', async () => 'never');

export default function workflow(wf: WorkflowContext) {
  if (wf.args[0] === 'greedy') return greedy().require({ cores: 64 });
  if (wf.args[0] === 'bigger') {
    // The child needs more memory than its parent got: it cannot be chained.
    const first = link(0, 1, '');
    first.addChild(link(0, 1, 'x').require({ memory: '3Gi' }));
    return first;
  }
  return link(0, Number(wf.args[0] ?? 5), '');
}
