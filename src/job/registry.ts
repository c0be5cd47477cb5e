import { UsageError } from '../errors.js';
import type { Job } from './job.js';
import type { JobContext } from './context.js';

export type JobFunction = (ctx: JobContext, ...args: never[]) => unknown;
export type JobClass = abstract new (...args: never[]) => Job<unknown>;

export type Definition =
  { kind: 'function'; name: string; fn: (ctx: JobContext, ...args: unknown[]) => unknown } | { kind: 'class'; name: string; cls: JobClass };

/** Definitions by name, as registered by one workflow module. */
export class Registry {
  private readonly defs = new Map<string, Definition>();

  add(def: Definition): void {
    const prev = this.defs.get(def.name);
    if (
      prev &&
      !(prev.kind === def.kind && (prev.kind === 'function' ? prev.fn === (def as typeof prev).fn : prev.cls === (def as typeof prev).cls))
    ) {
      throw new UsageError(`a job named '${def.name}' is already defined; job names must be unique within a workflow`);
    }
    this.defs.set(def.name, def);
  }

  get(name: string): Definition | undefined {
    return this.defs.get(name);
  }

  names(): string[] {
    return [...this.defs.keys()];
  }
}

const defaultRegistry = new Registry();
let active: Registry = defaultRegistry;

/** The registry definitions go to right now. */
export function activeRegistry(): Registry {
  return active;
}

/**
 * Runs `load` (an import of a workflow module) with a fresh registry active, so that the
 * module's definitions land there. Callers serialise their loads.
 */
export async function collectDefinitions(load: () => Promise<unknown>): Promise<{ registry: Registry; module: unknown }> {
  const registry = new Registry();
  const prev = active;
  active = registry;
  try {
    const module = await load();
    return { registry, module };
  } finally {
    active = prev;
  }
}

/** Class → registered name, for serialising class jobs. */
export const classNames = new WeakMap<object, string>();
