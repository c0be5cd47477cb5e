/**
 * Preloaded with `--import` (in NODE_OPTIONS, so worker processes get it too) into a process whose
 * wall clock is to be wrong: `Date.now()` and `new Date()` run TOIL_TEST_CLOCK_OFFSET_MS ahead (behind,
 * when negative). Monotonic time (`performance.now()`, `process.hrtime`, `os.uptime()`) is left as
 * it is, as on a machine whose clock was set wrong.
 */
const offset = Number(process.env.TOIL_TEST_CLOCK_OFFSET_MS ?? '0');
const RealDate = globalThis.Date;
const now = () => RealDate.now() + offset;

globalThis.Date = new Proxy(RealDate, {
  construct: (target, args, newTarget) => Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget),
  apply: () => new RealDate(now()).toString(),
  get: (target, prop, receiver) => (prop === 'now' ? now : Reflect.get(target, prop, receiver)),
});
