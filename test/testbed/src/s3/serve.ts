/**
 * Runs the test S3 server in the foreground, for trying the CLI or the benchmark by hand:
 *   npm run s3 -w @toil-ts/testbed -- [--no-conditional] [--slowdown 0.05] [--cut 0.02]
 *     [--sts [--oidc-issuer URL [--oidc-ca FILE] [--client-id sts.amazonaws.com] [--role NAME=SUBJECT]…]]
 * prints `AWS_ENDPOINT_URL_S3=http://127.0.0.1:<port>` and serves until interrupted. With
 * `--sts`, a test STS runs beside it, whose temporary credentials the server accepts: it prints
 * `AWS_ENDPOINT_URL_STS=…`, registers the OpenID Connect issuer (e.g. a test cluster's, with its
 * CA) and prints `AWS_ROLE_ARN=…` for each role, which trusts that issuer's tokens for SUBJECT
 * (`system:serviceaccount:<namespace>:<name>`, `*` wildcards) and the client id as audience.
 */
import { readFileSync } from 'node:fs';
import { startTestSts, type TestSts } from '../sts/server.js';
import { startTestS3 } from './server.js';

const args = process.argv.slice(2);
const values = (flag: string): string[] => args.flatMap((a, i) => (a === flag && args[i + 1] !== undefined ? [args[i + 1]!] : []));
const num = (flag: string): number => Number(values(flag)[0] ?? 0);
const usage = (message: string): never => {
  process.stderr.write(`npm run s3: ${message}\n`);
  process.exit(2);
};

/** The STS the flags ask for, with its provider and roles; each role's ARN is printed. */
async function stsFromFlags(): Promise<TestSts | undefined> {
  const issuer = values('--oidc-issuer')[0];
  const roles = values('--role');
  if (!args.includes('--sts')) {
    if (issuer !== undefined || roles.length > 0) usage('--oidc-issuer and --role need --sts');
    return undefined;
  }
  if (roles.length > 0 && issuer === undefined) usage('--role needs --oidc-issuer (the issuer its tokens come from)');
  const caFile = values('--oidc-ca')[0];
  let caPem: string | undefined;
  try {
    caPem = caFile === undefined ? undefined : readFileSync(caFile, 'utf8');
  } catch (e) {
    usage(`--oidc-ca: cannot read ${caFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const clientId = values('--client-id')[0] ?? 'sts.amazonaws.com';
  const sts = await startTestSts();
  try {
    if (issuer !== undefined) sts.createOpenIdConnectProvider({ url: issuer, clientIds: [clientId], ...(caPem ? { caPem } : {}) });
    for (const role of roles) {
      const eq = role.indexOf('=');
      if (eq <= 0) usage(`--role wants NAME=SUBJECT, not '${role}'`);
      const arn = sts.createRole({ roleName: role.slice(0, eq), provider: issuer!, subject: role.slice(eq + 1), audience: clientId }).arn;
      process.stdout.write(`AWS_ROLE_ARN=${arn}\n`);
    }
  } catch (e) {
    await sts.stop();
    usage((e as Error).message);
  }
  process.stdout.write(`AWS_ENDPOINT_URL_STS=${sts.endpoint}\n`);
  return sts;
}

const sts = await stsFromFlags();
const s3 = await startTestS3({
  conditionalWrites: !args.includes('--no-conditional'),
  faults: { slowDown: num('--slowdown'), cut: num('--cut') },
  ...(sts ? { sts } : {}),
});
process.stdout.write(`AWS_ENDPOINT_URL_S3=${s3.endpoint}\n`);
const stop = (): void => {
  void s3
    .requestCount()
    .then((c) => process.stderr.write(`requests: ${JSON.stringify(c)}\n`))
    .finally(() => Promise.all([s3.stop(), sts?.stop()]).then(() => process.exit(0)));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
