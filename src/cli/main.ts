/**
 * The `toil` command: run, status, clean, kill and worker. Options keep Toil's names.
 * Exit codes: 0 success, 1 the workflow failed, 2 bad usage or configuration (nothing created).
 */
import { Command, CommanderError } from 'commander';
import { ToilError, UsageError } from '../errors.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, exitCodeFor, forPeople } from './exit.js';
import { addRunOptions, environmentHelp, givenOptions, type RunOpts } from './runOptions.js';
import type { CleanOptions } from './clean.js';

// Each command loads what it needs when it runs: a worker, started once per batch job in its
// own pod or process, does not load the leader, the job store's listings or `toil init`.

/** A failed or killed workflow (WorkflowFailedError): its message is the report, said as it is. */
function isWorkflowEnd(e: unknown): e is ToilError {
  return e instanceof ToilError && (e.code === 'WORKFLOW_FAILED' || e.code === 'KILLED');
}

function fail(e: unknown): never {
  if (isWorkflowEnd(e)) {
    process.stderr.write(`${e.message}\n`);
    process.exit(EXIT_FAILED);
  }
  process.stderr.write(`toil: ${forPeople(e, { debug: Boolean(process.env['TOIL_DEBUG']) })}\n`);
  process.exit(exitCodeFor(e));
}

async function run(workflow: string, jobStore: string, workflowArgs: string[], o: RunOpts): Promise<void> {
  const { Toil } = await import('../workflow/toil.js');
  const toil = await Toil.open({ ...(await givenOptions(jobStore, o)), jobStore, workflow });
  const builder = toil.module['default'];
  if (!toil.config.restart && typeof builder !== 'function') {
    throw new UsageError(`${toil.workflowName} has no default export: add 'export default function workflow(wf) { return rootJob; }'`);
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(130);
    const kept = toil.config.clean === 'never' || toil.config.clean === 'onSuccess';
    toil.logger.warning(
      `received ${sig}: stopping the workflow (${kept ? 'the job store is kept for --restart' : `then deleting the job store: --clean ${toil.config.clean}`})`,
    );
    toil.stop(`interrupted by ${sig}`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const value = toil.config.restart
    ? await toil.restart(workflowArgs)
    : await toil.start(builder as Parameters<typeof toil.start>[0], workflowArgs);
  process.stdout.write(`${JSON.stringify(value ?? null)}\n`);
}

export function buildProgram(): Command {
  const program = new Command('toil')
    .description('Toil-style workflows in TypeScript, on this machine or on Kubernetes')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  addRunOptions(
    program
      .command('run')
      .description("run a workflow: its module's default export builds the root job; prints the root job's value as JSON")
      .argument('<workflow>', 'the workflow module (.ts or .js): a path, or a file:, http(s):// or s3:// URL to fetch it from')
      .argument('<jobStore>', 'job store locator: a path, file:<path> or aws:<region>:<name>')
      .argument('[workflowArgs...]', 'arguments after -- are passed to the workflow as wf.args')
      .exitOverride(),
  )
    .addHelpText(
      'after',
      `
Environment:
${environmentHelp()}

Exit codes: 0 success (the root job's value is printed as JSON on stdout), 1 the workflow
failed (each failed job is named with its last log lines), 2 bad usage or configuration.

Config file: YAML, Toil's option names as keys, values as for the flags, e.g.
  batchSystem: kubernetes
  retryCount: 3
  defaultMemory: 4Gi
Flags win over the file, the file over environment variables, those over defaults.

Examples:
  toil run examples/helloworld.ts ./my-store -- Alice
  toil run https://example.org/flows/hello.ts aws:us-west-2:my-store --config /etc/toil/config.yaml`,
    )
    .action(async (workflow: string, jobStore: string, workflowArgs: string[], o: RunOpts) => {
      await run(workflow, jobStore, workflowArgs, o);
    });

  program
    .command('init')
    .description('start a workflow project: package.json (toil-ts, scripts typecheck and start), tsconfig.json, a first workflow.ts')
    .argument('[dir]', 'the project directory (made if missing)', '.')
    .option(
      '--kubernetes',
      "instead, a run of your own on Kubernetes in dir: the example overlay, with this toil-ts's base and install parts copied beside it (renders offline, from anywhere)",
    )
    .exitOverride()
    .action(async (dir: string, o: { kubernetes?: boolean }) => {
      const made = o.kubernetes
        ? await (await import('./initKubernetes.js')).initKubernetes(dir)
        : await (await import('./init.js')).initProject(dir);
      process.stderr.write(`${made}\n`);
    });

  program
    .command('status')
    .description('summarise a job store: the workflow, its leader, jobs by state, failures')
    .argument('<jobStore>')
    .option('--json', 'print JSON')
    .exitOverride()
    .action(async (jobStore: string, o: { json?: boolean }) => {
      const { formatStatus, storeStatus } = await import('./status.js');
      const s = await storeStatus(jobStore);
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStatus(s)}\n`);
    });

  program
    .command('stats')
    .description(
      'summarise a workflow run with --stats: per job name, count and wall time, CPU and memory (min, median, max, total), and the requirement that would have sufficed',
    )
    .argument('<jobStore|statsFile>', 'a job store, or the <jobStore>.stats.json file --stats wrote next to it')
    .option('--format <format>', 'text or json', 'text')
    .option('-o, --output <file>', 'write to this file instead of stdout')
    .exitOverride()
    .action(async (target: string, o: { format: string; output?: string }) => {
      const { statsCommand } = await import('./stats.js');
      const text = await statsCommand(target, o);
      if (text !== undefined) process.stdout.write(`${text}\n`);
    });

  program
    .command('report')
    .description(
      'write one self-contained HTML report of a workflow run with --stats: summary, timeline, used against asked, pod phases, failures, node cache',
    )
    .argument('<jobStore|statsFile>', 'a job store, or the <jobStore>.stats.json file --stats wrote next to it')
    .requiredOption('-o, --output <file>', 'the HTML file to write')
    .exitOverride()
    .action(async (target: string, o: { output: string }) => {
      const { reportCommand } = await import('./report.js');
      process.stderr.write(`${await reportCommand(target, o)}\n`);
    });

  program
    .command('clean')
    .description('delete a job store and everything in it, and first the worker Jobs a dead leader left in Kubernetes')
    .argument('<jobStore>')
    .option('--force', 'delete it even while a leader holds it')
    .option(
      '--kubernetes',
      'for a store that does not record where its worker Jobs ran (made by an older version): look for them in the current Kubernetes context (default when KUBECONFIG is set or in a pod)',
    )
    .option('--no-kubernetes', 'leave Kubernetes alone: delete the store even if its worker Jobs cannot be deleted')
    .exitOverride()
    .action(async (jobStore: string, o: CleanOptions) => {
      const { cleanStore } = await import('./clean.js');
      await cleanStore(jobStore, o, (line) => process.stderr.write(`toil: ${line}\n`));
    });

  program
    .command('kill')
    .description("ask a workflow's leader to stop; its running jobs are killed and the job store is kept")
    .argument('<jobStore>')
    .exitOverride()
    .action(async (jobStore: string) => {
      const [{ openJobStore }, { KILL_FILE }, { leaseSeemsLive, readLease }] = await Promise.all([
        import('../jobstore/open.js'),
        import('../leader/leader.js'),
        import('../leader/lease.js'),
      ]);
      const store = await openJobStore(jobStore);
      if (!(await store.exists())) throw new UsageError(`job store ${store.locator} does not exist`);
      await store.writeShared(KILL_FILE, JSON.stringify({ requestedAt: new Date().toISOString() }));
      const lease = await readLease(store);
      process.stderr.write(
        lease && leaseSeemsLive(lease.body)
          ? `toil: asked the leader (pid ${lease.body.pid} on ${lease.body.host}) to stop\n`
          : `toil: no leader is running on ${store.locator}; the next --restart will clear the request\n`,
      );
    });

  program
    .command('worker')
    .description('run one batch job, or with --executor the jobs a leader gives an executor (used by batch systems)')
    .argument('<jobStore>')
    .argument('[jobId]')
    .option('--workDir <dir>', 'where to put temporary files (env TOIL_WORKDIR)')
    .option('--executor <name>', "run as the leader's executor of this name: job after job, several at once")
    .exitOverride()
    .action(async (jobStore: string, jobId: string | undefined, o: { workDir?: string; executor?: string }) => {
      const workDir = o.workDir ?? process.env['TOIL_WORKDIR'];
      if ((jobId === undefined) === (o.executor === undefined))
        throw new UsageError('toil worker needs a job id, or --executor <name>, and not both');
      if (o.executor !== undefined) {
        const { runExecutor } = await import('../batch/executors/executorMain.js');
        const stop = new AbortController();
        process.once('SIGTERM', () => stop.abort());
        process.exit(await runExecutor({ locator: jobStore, name: o.executor, signal: stop.signal, ...(workDir ? { workDir } : {}) }));
      }
      const { runWorker } = await import('../worker/worker.js');
      const code = await runWorker({ locator: jobStore, jobId: jobId ?? '', echo: true, ...(workDir ? { workDir } : {}) });
      process.exit(code);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    process.exitCode = EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') process.exit(EXIT_OK);
      // Commander already printed its one-line message.
      process.exit(EXIT_USAGE);
    }
    fail(e);
  }
}
