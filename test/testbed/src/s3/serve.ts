/**
 * Runs the test S3 server in the foreground, for trying the CLI or the benchmark by hand:
 *   npm run s3 -w @toil-ts/testbed -- [--no-conditional] [--slowdown 0.05] [--cut 0.02]
 * prints `AWS_ENDPOINT_URL_S3=http://127.0.0.1:<port>` and serves until interrupted.
 */
import { startTestS3 } from './server.js';

const args = process.argv.slice(2);
const num = (flag: string): number => {
  const i = args.indexOf(flag);
  return i >= 0 ? Number(args[i + 1]) : 0;
};
const s3 = await startTestS3({
  conditionalWrites: !args.includes('--no-conditional'),
  faults: { slowDown: num('--slowdown'), cut: num('--cut') },
});
process.stdout.write(`AWS_ENDPOINT_URL_S3=${s3.endpoint}\n`);
const stop = (): void => {
  void s3
    .requestCount()
    .then((c) => process.stderr.write(`requests: ${JSON.stringify(c)}\n`))
    .finally(() => s3.stop().then(() => process.exit(0)));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
