/**
 * Runs the test SimpleDB server in the foreground, for trying the client or the job store by hand:
 *   npm run simpledb -w @toil-ts/testbed -- [--port 8090] [--consistency-ms 1000] [--error 0.05] [--throttle 0.02] [--cut 0.02] [--empty-select 0.1]
 * prints `AWS_ENDPOINT_URL_SIMPLEDB=http://127.0.0.1:<port>` and serves until interrupted.
 */
import { startSimpleDbServer } from './server.js';

const args = process.argv.slice(2);
const num = (flag: string, dflt?: number): number | undefined => {
  const i = args.indexOf(flag);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`${flag} needs a number ≥ 0, not '${args[i + 1] ?? ''}'\n`);
    process.exit(2);
  }
  return v;
};
const port = num('--port');
const eventualConsistencyMs = num('--consistency-ms');
const sdb = await startSimpleDbServer({
  ...(port !== undefined ? { port } : {}),
  ...(eventualConsistencyMs !== undefined ? { eventualConsistencyMs } : {}),
});
sdb.setFaults({
  errorRate: num('--error', 0),
  throttleRate: num('--throttle', 0),
  cutRate: num('--cut', 0),
  emptySelectRate: num('--empty-select', 0),
});
process.stdout.write(`AWS_ENDPOINT_URL_SIMPLEDB=${sdb.endpoint}\n`);
const stop = (): void => {
  process.stderr.write(`requests: ${JSON.stringify(sdb.requestCounts())}\n`);
  void sdb.stop().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
