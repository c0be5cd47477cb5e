import { SingleMachineBatchSystem, machineResources } from '../batch/singleMachine.js';
import type { BatchSystem } from '../batch/types.js';
import { UsageError } from '../errors.js';
import { defaultWorkDir, type ToilConfig } from './config.js';

/** Creates the batch system the configuration names. */
export async function createBatchSystem(config: ToilConfig): Promise<BatchSystem> {
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
    case 'kubernetes':
      throw new UsageError('--batchSystem kubernetes is not available in this build yet');
  }
}
