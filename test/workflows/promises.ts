/**
 * Promises: values with paths, a job that returns another job's promise (forwarding, also for
 * the root's own value), class jobs whose fields hold promises, and promises used two levels on.
 */
import { defineJob, Job, type JobContext, type JobPromise, type WorkflowContext } from 'toil-ts';

const make = defineJob('make', async (_ctx: JobContext) => ({ x: [10, 20, 30], label: 'made' }));

const add = defineJob('add', async (_ctx: JobContext, a: number, b: number) => a + b);

/** Returns the promise of a child's value: its own value is forwarded. */
const forward = defineJob('forward', async (ctx: JobContext, n: number) => {
  const child = ctx.addChild(add(n, 1000));
  return child.rv();
});

class Describe extends Job<string> {
  constructor(
    public readonly label: string | JobPromise<string>,
    public readonly total: number | JobPromise<number>,
    public readonly forwarded: number | JobPromise<number>,
  ) {
    super();
  }
  async run(): Promise<string> {
    return `${String(this.label)}:${String(this.total)}:${String(this.forwarded)}`;
  }
}
Job.register(Describe, 'describe');

const collect = defineJob('collect', async (_ctx: JobContext, parts: { sum: number; fwd: number; text: string }) => ({
  ...parts,
  keys: Object.keys(parts).sort(),
}));

const main = defineJob('main', async (ctx: JobContext) => {
  const m = ctx.addChild(make());
  const sum = m.addChild(add(m.rv<number>('x', 1), m.rv<number>('x', 2)));
  const fwd = m.addChild(forward(5));
  const desc = m.addFollowOn(new Describe(m.rv<string>('label'), sum.rv(), fwd.rv()));
  const out = desc.addFollowOn(collect({ sum: sum.rv(), fwd: fwd.rv(), text: desc.rv() }));
  return out.rv();
});

export default function workflow(_wf: WorkflowContext) {
  return main();
}
