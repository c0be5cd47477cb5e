/**
 * Running a workflow from your own program instead of the CLI (Node 22 runs this file as is):
 *
 *   node examples/programmatic.ts ./store 20
 */
import { Toil } from 'toil-ts';
import { fan } from './fanout.ts';

const [store = './jobstore-programmatic', n = '10'] = process.argv.slice(2);
const toil = await Toil.open({ jobStore: store, workflow: new URL('./fanout.ts', import.meta.url).pathname, clean: 'always' });
try {
  const value = await toil.start(fan(Number(n)));
  console.log(`sum of squares below ${n}: ${String(value)}`);
} finally {
  await toil.close();
}
