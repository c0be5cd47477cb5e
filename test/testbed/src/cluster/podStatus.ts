/** What the kubelet reports of a pod: its phase, its containers' statuses and its conditions. */
import type { Ctr, PodRt } from './kubeletTypes.js';
import { now } from './registry.js';
import { setCondition } from './objects.js';
import type { Obj } from './store.js';

/** Whether a container that ended is started again, as the pod's restartPolicy says. */
export function shouldRestart(p: Obj, ctr: Ctr): boolean {
  const rp = p.spec.restartPolicy;
  const code = ctr.state.terminated?.exitCode;
  if (rp === 'Always') return true;
  if (rp === 'OnFailure') return code !== 0;
  return false;
}

/** Succeeded or Failed once every app container is done for good; Running once one runs; else Pending. */
export function podPhase(p: Obj, rt: PodRt, terminating: boolean): string {
  const all = [...rt.ctrs.values()];
  const mainCtrs = all.filter((c) => !c.init);
  const anyRunning = all.some((c) => c.state.running);
  const allMainTerminated = mainCtrs.every((c) => c.state.terminated);
  const initFailed = all.some((c) => c.init && c.state.terminated && c.state.terminated.exitCode !== 0 && p.spec.restartPolicy === 'Never');
  let phase = 'Pending';
  if (rt.evicted && !anyRunning) phase = 'Failed';
  else if (initFailed) phase = 'Failed';
  else if (rt.initDone && mainCtrs.some((c) => c.state.running || c.state.terminated)) {
    phase = 'Running';
    const restartable = !terminating && mainCtrs.some((c) => c.nextStart && c.state.terminated && shouldRestart(p, c));
    if (allMainTerminated && !restartable) phase = mainCtrs.every((c) => c.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
  }
  if (terminating && !anyRunning && phase !== 'Succeeded') phase = 'Failed';
  if (terminating && !anyRunning && mainCtrs.every((c) => c.state.terminated?.exitCode === 0) && mainCtrs.length) phase = 'Succeeded';
  return phase;
}

/** A container's status as the kubelet reports it; one waiting to restart shows CrashLoopBackOff when `showBackOff`. */
export function containerStatus(rt: PodRt, c: Ctr, spec: Obj, showBackOff: boolean): Obj {
  let state = c.state;
  let lastState = c.lastState;
  if (state.terminated && c.nextStart && Date.now() < c.nextStart && showBackOff) {
    lastState = { terminated: state.terminated };
    state = {
      waiting: {
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.round((c.nextStart - Date.parse(state.terminated.finishedAt)) / 1000)}s restarting failed container=${c.name} pod=${rt.name}_${rt.ns}(${rt.uid})`,
      },
    };
  }
  return {
    name: c.name,
    state,
    lastState,
    ready: !!state.running && !c.init,
    restartCount: c.restartCount,
    image: spec.image,
    imageID: state.waiting ? '' : (c.imageID ?? `docker.io/library/${String(spec.image)}@sha256:${'0'.repeat(64)}`),
    ...(state.waiting ? {} : { containerID: `containerd://${c.containerID}` }),
    started: !!state.running,
  };
}

const CONDITION_ORDER = ['DisruptionTarget', 'PodReadyToStartContainers', 'Initialized', 'Ready', 'ContainersReady', 'PodScheduled'];

/** The kubelet's pod conditions over the existing ones, in the kubelet's order. */
export function podConditions(existing: Obj[], rt: PodRt, phase: string, statuses: { inits: Obj[]; mains: Obj[] }): Obj[] {
  const { inits, mains } = statuses;
  const t = now();
  const ready = mains.every((c) => c.ready);
  let conds = existing;
  const set = (type: string, ok: boolean, reason?: string, message?: string): void => {
    conds = setCondition(conds, {
      type,
      status: ok ? 'True' : 'False',
      lastProbeTime: null,
      lastTransitionTime: t,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
  };
  const notReady = mains.filter((c) => !c.ready).map((c) => c.name);
  set('PodReadyToStartContainers', rt.volumesReady && !(phase !== 'Pending' && phase !== 'Running'));
  set(
    'Initialized',
    rt.initDone,
    rt.initDone ? undefined : 'ContainersNotInitialized',
    rt.initDone
      ? undefined
      : `containers with incomplete status: [${inits
          .filter((c) => !(c.state.terminated?.exitCode === 0))
          .map((c) => c.name)
          .join(' ')}]`,
  );
  const readyReason = phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady';
  const unready = ready || readyReason === 'PodCompleted' ? undefined : `containers with unready status: [${notReady.join(' ')}]`;
  set('Ready', ready, ready ? undefined : readyReason, unready);
  set('ContainersReady', ready, ready ? undefined : readyReason, unready);
  conds.sort((a, b) => CONDITION_ORDER.indexOf(a.type) - CONDITION_ORDER.indexOf(b.type));
  return conds;
}
