/**
 * A container's process: spawned from its script, its output written to the container log as
 * containerd does, its memory limit noted for the OOM killer, and its end turned into the
 * container's terminated state (exit code or signal, OOMKilled, FallbackToLogsOnError message)
 * and the restart back-off of its pod's restartPolicy.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { logTail, pumpLines } from './containerLogs.js';
import type { ContainerRef, ContainerScript, Ctr, EventFn, PodRt } from './kubeletTypes.js';
import { now } from './registry.js';
import type { Obj } from './store.js';
import { parseQuantity } from './validate.js';

export interface LaunchDeps {
  logDir: string;
  /** container restart back-off base (Kubernetes: 10 s doubling to 5 min) */
  restartBackoffBaseMs: number;
  spawnArgs: (script: ContainerScript) => { cmd: string; args: string[] };
  kick: () => void;
}

export class ContainerLauncher {
  constructor(private d: LaunchDeps) {}

  /**
   * Runs the container: PID 1 of new mount and PID namespaces is a shell that makes the mounts,
   * then runs the command and forwards termination signals to it, as an init such as tini does.
   */
  launch(
    { p, rt, c, ctr }: ContainerRef,
    run: { env: Record<string, string>; script: ContainerScript; started: string; ev: EventFn },
  ): void {
    const { env, started, ev } = run;
    const logDir = join(this.d.logDir, `${rt.ns}_${rt.name}_${rt.uid}`, c.name);
    mkdirSync(logDir, { recursive: true });
    const out = createWriteStream(join(logDir, `${ctr.restartCount}.log`), { flags: 'a' });
    out.on('error', () => {
      /* the state dir went away (cluster stopped) */
    });
    ctr.out = out;
    const logLine = (line: string): void => {
      if (!out.writableEnded) out.write(line);
    };
    const { cmd, args } = this.d.spawnArgs(run.script);
    const proc = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    ctr.proc = proc;
    ctr.pid = proc.pid;
    ctr.startedAt = started;
    ctr.oom = false;
    ctr.killedBy = undefined;
    const memLimit = c.resources?.limits?.memory;
    ctr.memoryLimit = memLimit !== undefined ? parseQuantity(memLimit) : undefined;
    ctr.state = { running: { startedAt: started } };
    ev('Normal', 'Created', `Created container ${String(c.name)}`);
    ev('Normal', 'Started', `Started container ${String(c.name)}`);
    pumpLines(proc.stdout!, 'stdout', logLine);
    pumpLines(proc.stderr!, 'stderr', logLine);
    let exited = false;
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      const finish = (): void => {
        out.end(() => {
          const sig = signal ? ((osConstants.signals as Record<string, number>)[signal] ?? 9) : 0;
          const exitCode = code ?? 128 + sig;
          let reason = exitCode === 0 ? 'Completed' : 'Error';
          if (ctr.oom) reason = 'OOMKilled';
          const message =
            exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError'
              ? logTail(join(logDir, `${ctr.restartCount}.log`))
              : undefined;
          ctr.state = {
            terminated: {
              exitCode,
              reason,
              ...(message ? { message } : {}),
              startedAt: started,
              finishedAt: now(),
              containerID: `containerd://${ctr.containerID}`,
            },
          };
          ctr.proc = undefined;
          this.afterExit(p, rt, ctr);
          this.d.kick();
        });
      };
      // give the pipes a moment to drain; descendants holding them open must not block the status
      let done = false;
      const once = (): void => {
        if (!done) {
          done = true;
          finish();
        }
      };
      proc.stdout?.once('end', () => {
        if (proc.stderr?.readableEnded) once();
      });
      proc.stderr?.once('end', () => {
        if (proc.stdout?.readableEnded) once();
      });
      if (proc.stdout?.readableEnded && proc.stderr?.readableEnded) once();
      setTimeout(once, 300).unref?.();
    };
    proc.on('exit', onExit);
    proc.on('error', (e) => {
      logLine(`${new Date().toISOString()} stderr F ${e.message}\n`);
      onExit(128, null);
    });
  }

  afterExit(p: Obj, rt: PodRt, ctr: Ctr): void {
    const code = ctr.state.terminated?.exitCode;
    const rp = p.spec.restartPolicy;
    const willRestart = !rt.gone && !rt.evicted && !rt.termSent && (rp === 'Always' || (rp === 'OnFailure' && code !== 0));
    if (willRestart) {
      const backoff = Math.min(this.d.restartBackoffBaseMs * 2 ** ctr.restartCount, 300_000);
      ctr.nextStart = Date.now() + backoff;
      setTimeout(() => this.d.kick(), backoff + 5).unref?.();
    }
  }
}
