/**
 * Remote control for clusters started with startTestClusterProcess(): the admin-only
 * POST /_testcluster/call names a TestCluster method (`createToken`) or a fault (`faults.oomKill`)
 * and its arguments. Fault handles cannot cross the process boundary, so failRequests and
 * delayRequests answer with an id that `faults.removeFault` and `faults.faultHits` take.
 */
import type { RequestFault } from './faults.js';
import type { TestCluster, TestClusterFaults } from './types.js';

type DelaySpec = Parameters<TestClusterFaults['delayRequests']>[0];
const NOT_CALLABLE = ['stop', 'failRequests', 'delayRequests', 'delayWatchEvents'];

export class RemoteControl {
  private installed = new Map<number, { remove: () => void; hits: () => number }>();
  private nextFaultId = 1;

  /** `cluster` is read at each call: the handle exists only once the cluster has started. */
  constructor(private readonly cluster: () => TestCluster) {}

  async call(method: string, args: unknown[]): Promise<unknown> {
    const faults = this.cluster().faults;
    switch (method) {
      case 'faults.failRequests':
        return this.install(faults.failRequests(args[0] as RequestFault));
      case 'faults.delayRequests':
        return this.install({ hits: () => 0, ...faults.delayRequests(args[0] as DelaySpec) });
      case 'faults.delayWatchEvents':
        return this.install({ hits: () => 0, ...faults.delayWatchEvents(args[0] as { resource?: string; ms: number }) });
      case 'faults.removeFault':
        this.installed.get(args[0] as number)?.remove();
        return null;
      case 'faults.faultHits':
        return this.installed.get(args[0] as number)?.hits() ?? 0;
      default:
        return this.callMember(method, args);
    }
  }

  private install(handle: { remove: () => void; hits: () => number }): number {
    const id = this.nextFaultId++;
    this.installed.set(id, handle);
    return id;
  }

  private async callMember(method: string, args: unknown[]): Promise<unknown> {
    const [scope, name] = method.includes('.') ? (method.split('.') as [string, string]) : ['', method];
    const target = (scope === 'faults' ? this.cluster().faults : this.cluster()) as unknown as Record<string, unknown>;
    const fn = target[name];
    if (typeof fn !== 'function' || NOT_CALLABLE.includes(name)) throw new Error(`unknown control method ${method}`);
    return await (fn as (...x: unknown[]) => unknown).apply(target, args);
  }
}
