/**
 * `npm run sandbox [-- --dir DIR]`: a Kubernetes cluster and an S3 endpoint on this machine, for
 * trying the manifests with no cloud account. Starts the test cluster (two nodes; pods run from
 * images in local buildah storage, as `npm run image` builds them) and the test S3 server, writes
 * an AWS credentials file whose profile names that endpoint, and prints what to run next — from
 * another shell, and from this machine (`toil status`, `toil clean`). Serves until Ctrl-C
 * (SIGINT) or SIGTERM, then stops both, removes its state (DIR, default .tmp/sandbox) and says
 * what it stopped, what it removed and what stays.
 */
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startTestCluster } from '@toil-ts/testbed/cluster';
import { ROOT } from '../helpers/run.js';
import { startTestS3 } from '@toil-ts/testbed/s3';
import { writeS3Credentials } from './setup.js';

const { values } = parseArgs({ options: { dir: { type: 'string', default: path.join(ROOT, '.tmp', 'sandbox') } } });
const dir = path.resolve(values.dir);
const shown = (p: string): string => (path.relative(ROOT, p).startsWith('..') ? p : `$PWD/${path.relative(ROOT, p)}`);
const say = (line: string): void => void process.stdout.write(`sandbox: ${line}\n`);

/** Bytes under a directory (not following links). */
async function sizeOf(p: string): Promise<number> {
  const s = await lstat(p).catch(() => undefined);
  if (!s?.isDirectory()) return s?.size ?? 0;
  let total = 0;
  for (const e of await readdir(p)) total += await sizeOf(path.join(p, e));
  return total;
}

await mkdir(dir, { recursive: true });
const [cluster, s3] = await Promise.all([
  startTestCluster({ containerImages: { storageDriver: 'vfs' }, stateDir: path.join(dir, 'cluster') }),
  startTestS3({ conditionalWrites: true }),
]);
const credentials = await writeS3Credentials({ dir, endpoint: s3.endpoint });
const store = 'aws:us-west-2:demouser-toil-test-jobstore';

process.stdout.write(`A test cluster at ${cluster.server} and an S3 endpoint at ${s3.endpoint} are running,
their state in ${dir}. From another shell, at the repository root:

  export KUBECONFIG=${shown(cluster.kubeconfigPath)}
  kubectl create secret generic s3-credentials --from-file ${shown(credentials)}
  kubectl apply -f manifests/leader-job.yaml        # hello world
  kubectl wait --for=condition=Complete job/toil-leader --timeout=5m
  kubectl logs job/toil-leader

'kubectl logs -f' straight after 'apply' may answer that the container "is waiting to start"
(its image's root file system is being prepared): run it again in a moment.

A run of your own (manifests/README.md):
  npx toil init --kubernetes my-run                 # then edit the lines marked EDIT
  kubectl apply -k my-run/toil-ts/install
  kubectl replace --force -k my-run

The job stores are in this S3 endpoint; to reach them with toil from this machine (after
'npm run build'):
  export AWS_SHARED_CREDENTIALS_FILE=${shown(credentials)} AWS_PROFILE=default
  npx toil status ${store}
  npx toil clean ${store}

Pods run the images in local buildah storage: 'npm run image' builds toil-ts, and
'buildah images --storage-driver vfs' lists them. Ctrl-C stops the cluster and the S3 server
and removes ${dir}; the images stay.
`);

/** A terminal's Ctrl-C can arrive twice at once: from the terminal, and relayed by tsx's own process. */
const SAME_SIGNAL_MS = 2000;
let stoppingSince: number | undefined;
async function stop(signal: string): Promise<void> {
  if (stoppingSince !== undefined) {
    if (performance.now() - stoppingSince < SAME_SIGNAL_MS) return;
    say(`${signal} again: leaving at once; ${dir} may be left behind`);
    process.exit(130);
  }
  stoppingSince = performance.now();
  say(`${signal}: stopping`);
  const pods = cluster.list('pods').length;
  await Promise.all([cluster.stop(), s3.stop()]);
  say(`stopped the test cluster at ${cluster.server} (${pods} pod(s)) and the S3 endpoint at ${s3.endpoint} (its buckets with it)`);
  const bytes = await sizeOf(dir);
  const removed = await rm(dir, { recursive: true, force: true }).then(
    () => `removed ${dir} (${(bytes / 1e6).toFixed(1)} MB: the cluster's state and its pods' files, the credentials file)`,
    (e: Error) => `could not remove ${dir} (${e.message}): remove it by hand`,
  );
  say(removed);
  say(
    `kept: the images and their prepared root file systems in buildah's storage ('buildah images --storage-driver vfs', 'buildah containers --storage-driver vfs')`,
  );
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
