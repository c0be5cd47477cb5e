#!/usr/bin/env node
/**
 * The leader's memory per job, without running any job: the `tree W` workflow's records
 * (W branches of W leaves, each branch and the root summing in a follow-on) go through the
 * leader's graph state as a run takes them — the root, then each branch adding its leaves when
 * it is done, every job issued and done in turn — and the heap is measured (after a full GC)
 * with everything pending, half-way, and at the end. Needs --expose-gc:
 *
 *   npm run build && node --expose-gc bench/leader-memory.js 1000     # 1,002,002 jobs
 */
import { GraphState } from '../dist/leader/graphState.js';

const MIB = 2 ** 20;
const width = Number(process.argv[2] ?? 1000);
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

let counter = 0;
const id = (name) => `${name}-${(counter++).toString(36).padStart(10, '0')}`;
function record(name, extra = {}) {
  return {
    id: id(name),
    name,
    kind: 'function',
    payload: [],
    requirements: {},
    checkpoint: false,
    children: [],
    followOns: [],
    staticChildren: 0,
    staticFollowOns: 0,
    predecessors: [],
    promiseDeps: [],
    state: 'pending',
    remainingTries: null,
    attempts: 0,
    ...extra,
  };
}
const done = (r, extra = {}) => ({ ...r, state: 'done', result: null, ...extra });

function heapUsed() {
  globalThis.gc();
  return process.memoryUsage().heapUsed;
}

const base = heapUsed();
const g = new GraphState(2);
const report = (what) => {
  const c = g.counts();
  const bytes = heapUsed() - base;
  console.log(
    `${what.padEnd(34)} jobs=${String(c.total).padStart(8)} done=${String(c.done).padStart(8)}  heap=${(bytes / MIB).toFixed(1).padStart(7)} MiB  ${(bytes / c.total).toFixed(0).padStart(5)} B/job`,
  );
};

// The root and its branches, as the root's run creates them; each branch's leaves as it runs.
const root = record('tree');
g.add(root);
g.recompute();
const branches = Array.from({ length: width }, () => record('branch', { predecessors: [root.id] }));
const rootSum = record('sum', { promiseDeps: branches.map((b) => b.id), predecessors: [root.id] });
for (const r of [...branches, rootSum]) g.add(r);
g.markIssued(root.id);
g.markDone(done(root, { children: branches.map((b) => b.id), followOns: [rootSum.id] }));
const started = process.hrtime.bigint();
const order = [];
for (const b of branches) {
  const leaves = Array.from({ length: width }, () => record('leaf', { predecessors: [b.id] }));
  const sum = record('sum', { promiseDeps: leaves.map((l) => l.id), predecessors: [b.id] });
  for (const r of [...leaves, sum]) g.add(r);
  g.markIssued(b.id);
  g.markDone(done(b, { children: leaves.map((l) => l.id), followOns: [sum.id], forwards: [sum.id] }));
  order.push(...leaves.map((l) => l.id), sum.id);
}
report('all created, leaves pending');
let n = 0;
for (const jid of order) {
  g.markIssued(jid);
  g.markDone(done({ ...record('leaf'), id: jid }));
  if (++n === Math.floor(order.length / 2)) report('half of the leaves done');
}
g.markIssued(rootSum.id);
g.markDone(done(rootSum));
report('all done');
const secs = Number(process.hrtime.bigint() - started) / 1e9;
const rootNode = g.node ? g.node(root.id) : g.nodes.get(root.id); // the graph state before its compact table had `nodes`
console.log(`root subtree finished: ${rootNode?.subtreeDone}; ${(g.counts().total / secs).toFixed(0)} jobs/s through the graph state`);
