/**
 * toil-ts: Toil-style workflows in TypeScript.
 *
 * ```ts
 * import { defineJob, type JobContext, type WorkflowContext } from 'toil-ts';
 *
 * export const hello = defineJob('hello', async (ctx: JobContext, name: string) => {
 *   ctx.log(`Hello, ${name}`);
 *   return `Hello, ${name}`;
 * });
 *
 * export default function workflow(wf: WorkflowContext) {
 *   return hello(wf.args[0] ?? 'world').require({ memory: '2G', cores: 1, disk: '3G' });
 * }
 * ```
 *
 * Run it with `npx toil run hello.ts ./my-jobstore`.
 */
export * from './job/api.js';
export { Toil, WorkflowFailedError, type ToilOptions, type WorkflowBuilder } from './workflow/toil.js';
export type { ToilConfig, ToilConfigInput } from './workflow/config.js';
