/**
 * A process that uploads an endless file into an AWS job store, for the "killed upload" test:
 * it reports each finished part on stdout and never finishes, until it is killed. It runs the
 * built store (dist/, which `npm test` builds first) with plain Node: compiling the sources on
 * the fly took more than a minute on a loaded machine.
 * Arguments: <locator> ; environment: the test server's (AWS_ENDPOINT_URL_S3, credentials).
 */
import { Readable } from 'node:stream';
import { AwsJobStore } from '../../dist/jobstore/aws/awsJobStore.js';
import { parseLocator } from '../../dist/jobstore/locator.js';

const loc = parseLocator(process.argv[2] ?? '');
if (loc.kind !== 'aws') throw new Error('expected an aws: locator');
const store = new AwsJobStore(loc, { settings: { partSize: 5 * 1024 * 1024, queueSize: 2 } });
let sent = 0;
const chunk = Buffer.alloc(1024 * 1024, 7);
const source = new Readable({
  read() {
    sent++;
    if (sent % 5 === 0) process.stdout.write(`sent ${sent} MiB\n`);
    this.push(chunk);
  },
});
await store.writeFile(source, { basename: 'endless.bin' });
process.stdout.write('finished?!\n');
