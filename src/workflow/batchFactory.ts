import { SingleMachineBatchSystem, machineResources } from '../batch/singleMachine.js';
import type { BatchSystem } from '../batch/types.js';
import type { JobStore } from '../jobstore/types.js';
import type { Logger } from '../log.js';
import { defaultWorkDir, type ToilConfig } from './config.js';

export interface BatchContext {
  workflowId: string;
  store: JobStore;
  logger: Logger;
}

/**
 * Creates the batch system the configuration names. For Kubernetes this finds and checks the
 * cluster, so a missing or unreachable one is a UsageError before anything is created.
 */
export async function createBatchSystem(config: ToilConfig, ctx: BatchContext): Promise<BatchSystem> {
  const inner = await innerBatchSystem(config, ctx);
  if (!(config.kubernetesExecutors ?? false)) return inner;
  const { ExecutorBatchSystem } = await import('../batch/executors/executorBatch.js');
  return new ExecutorBatchSystem(inner, {
    store: ctx.store,
    logger: ctx.logger,
    bounds: {
      slots: config.kubernetesExecutorSlots,
      maxCores: config.kubernetesExecutorCores,
      maxMemory: config.kubernetesExecutorMemory,
      maxDisk: EXECUTOR_MAX_DISK,
    },
    maxExecutors: config.kubernetesExecutorMax,
    idleMs: config.kubernetesExecutorIdle * 1000,
    silenceMs: 2 * config.leaseSeconds * 1000,
    maxDisruptions: config.kubernetesMaxDisruptions,
    ...(config.workDir ? { workDir: config.workDir } : {}),
  });
}

/** Most disk one executor asks for (the sum of its slots'): jobs needing more than a share of it get a pod of their own. */
const EXECUTOR_MAX_DISK = 64 * 1024 ** 3;

async function innerBatchSystem(config: ToilConfig, ctx: BatchContext): Promise<BatchSystem> {
  switch (config.batchSystem) {
    case 'single_machine': {
      const machine = await machineResources(defaultWorkDir(config));
      return new SingleMachineBatchSystem({
        maxCores: config.maxCores ?? machine.cores,
        maxMemory: config.maxMemory ?? machine.memory,
        maxDisk: config.maxDisk ?? machine.disk,
        maxJobs: config.maxJobs ?? Number.MAX_SAFE_INTEGER,
      });
    }
    case 'kubernetes': {
      // Loaded only when used: the Kubernetes client is large.
      const { KubernetesBatchSystem } = await import('../batch/kubernetes.js');
      return KubernetesBatchSystem.create({
        workflowId: ctx.workflowId,
        locator: ctx.store.locator,
        store: ctx.store,
        logger: ctx.logger,
        podTimeoutSeconds: config.kubernetesPodTimeout,
        maxDisruptions: config.kubernetesMaxDisruptions,
        restartWaitSeconds: config.kubernetesRestartWait,
        qps: config.kubernetesQps,
        burst: config.kubernetesBurst,
        ...(config.kubernetesOwner ? { owner: config.kubernetesOwner } : {}),
        ...(config.applianceImage ? { image: config.applianceImage } : {}),
        ...(config.kubernetesHostPath ? { hostPath: config.kubernetesHostPath } : {}),
        ...(config.awsSecretName ? { awsSecretName: config.awsSecretName } : {}),
        ...(config.kubernetesServiceAccount ? { serviceAccountName: config.kubernetesServiceAccount } : {}),
      });
    }
  }
}
