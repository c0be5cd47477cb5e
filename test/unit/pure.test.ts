/** Pure logic: sizes, requirements, JSON encoding, graph planning, backoff, configuration. */
import { describe, expect, it } from '@jest/globals';
import { defineJob } from '../../src/job/job.js';
import { planSave } from '../../src/job/graph.js';
import type { JobRecord } from '../../src/job/types.js';
import { decodeValue, encodeValue } from '../../src/job/json.js';
import { fitsWithin, normaliseRequirements, resolveRequirements } from '../../src/job/requirements.js';
import { backoffDelayMs } from '../../src/backoff.js';
import { parseSize, formatSize } from '../../src/size.js';
import { parseConfig } from '../../src/workflow/config.js';

describe('sizes', () => {
  it.each([
    [512, 512],
    ['512', 512],
    ['512M', 512e6],
    ['2Gi', 2 * 2 ** 30],
    ['3G', 3e9],
    ['1.5GiB', 1.5 * 2 ** 30],
    ['10 k', 10000],
  ])('parses %p', (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });
  it.each(['', 'lots', '-1', '5 parsecs', '1e3'])('rejects %p', (input) => {
    expect(() => parseSize(input)).toThrow(/not a size/);
  });
  it('formats', () => {
    expect(formatSize(2 * 2 ** 30)).toBe('2.0 GiB');
    expect(formatSize(17)).toBe('17 B');
  });
});

describe('requirements', () => {
  it('normalises sizes and accelerators', () => {
    expect(normaliseRequirements({ cores: 2, memory: '2Gi', disk: '3G', accelerators: 'cuda:2', preemptible: true })).toEqual({
      cores: 2,
      memory: 2 * 2 ** 30,
      disk: 3e9,
      accelerators: [{ count: 2, kind: 'gpu', brand: 'nvidia' }],
      preemptible: true,
    });
    expect(normaliseRequirements({ accelerators: 1 }).accelerators).toEqual([{ count: 1, kind: 'gpu' }]);
    expect(normaliseRequirements({ accelerators: ['nvidia-tesla-t4:1'] }).accelerators).toEqual([
      { count: 1, kind: 'gpu', model: 'nvidia-tesla-t4', brand: 'nvidia' },
    ]);
  });
  it('rejects nonsense naming the field', () => {
    expect(() => normaliseRequirements({ cores: -1 })).toThrow(/cores must be a number > 0/);
    expect(() => normaliseRequirements({ memory: 'much' })).toThrow(/memory: not a size/);
    expect(() => normaliseRequirements({ gpus: 1 } as never)).toThrow(/unknown requirement 'gpus'/);
  });
  it('resolves defaults and checks fit', () => {
    const r = resolveRequirements({ cores: 2 }, { cores: 1, memory: 100, disk: 200 });
    expect(r).toEqual({ cores: 2, memory: 100, disk: 200, accelerators: [], preemptible: false });
    expect(fitsWithin(resolveRequirements({}, { cores: 1, memory: 100, disk: 200 }), r)).toBe(true);
    expect(fitsWithin(resolveRequirements({ cores: 3 }, { cores: 1, memory: 100, disk: 200 }), r)).toBe(false);
  });
  it('is set through job.require, and bad values fail at the call site', () => {
    const j = defineJob('req-test', async () => 1);
    expect(() => j().require({ memory: 'lots' })).toThrow(/job 'req-test': memory: not a size/);
  });
});

describe('JSON encoding', () => {
  const opts = { what: 'the value', idOf: () => 'id-1' };
  it('round-trips JSON values, undefined in arrays, and promises', async () => {
    const j = defineJob('enc-test', async () => ({ a: 1 }));
    const job = j();
    const enc = encodeValue({ a: [1, undefined, 'x'], b: job.rv('a'), c: undefined }, opts);
    expect(enc).toEqual({ a: [1, { '$toil.undefined': true }, 'x'], b: { '$toil.rv': { job: 'id-1', path: ['a'] } } });
    const dec = await decodeValue(enc, async (id, path) => `${id}:${path.join('.')}`);
    expect(dec).toEqual({ a: [1, undefined, 'x'], b: 'id-1:a' });
  });
  it.each([
    [new Date(0), /the value itself is a Date \(pass date.toISOString\(\) instead\)/],
    [{ m: new Map() }, /\.m is a Map/],
    [[1, () => 2], /\[1\] is a function/],
    [{ n: NaN }, /\.n is NaN/],
    [{ big: 1n }, /\.big is a BigInt/],
  ])('refuses %p', (value, message) => {
    expect(() => encodeValue(value, opts)).toThrow(message);
  });
  it('refuses cycles', () => {
    const a: Record<string, unknown> = {};
    a['self'] = a;
    expect(() => encodeValue(a, opts)).toThrow(/refers back to itself/);
  });
  it('refuses bad arguments when the job is created', () => {
    const j = defineJob('enc-args', async (_ctx, _x: unknown) => 1);
    expect(() => j(new Set([1]))).toThrow(/argument 1 of job 'enc-args' is not JSON-serialisable: the value itself is a Set/);
  });
});

describe('planning a save', () => {
  const j = defineJob('plan', async (_ctx, _n: unknown) => 1);
  it('assigns ids, edges, predecessors and promise deps', () => {
    const a = j(0);
    const b = a.addChild(j(a.rv()));
    const c = a.addChild(j(0));
    const d = b.addChild(j(c.rv()));
    c.addChild(d);
    a.addFollowOn(j(0));
    const plan = planSave({ roots: [a] });
    expect(plan.records).toHaveLength(5);
    // Breadth-first from the root: a, then b, c, f, then d.
    const [ra, rb, rc, rf, rd] = plan.records as [JobRecord, JobRecord, JobRecord, JobRecord, JobRecord];
    expect(ra.children).toEqual([rb.id, rc.id]);
    expect(ra.followOns).toEqual([rf.id]);
    expect([...rd.predecessors].sort()).toEqual([rb.id, rc.id].sort());
    expect(rb.promiseDeps).toEqual([ra.id]);
    expect(rd.promiseDeps).toEqual([rc.id]);
    expect(ra.staticChildren).toBe(2);
    expect(new Set(plan.records.map((r) => r.id)).size).toBe(5);
  });
  it('refuses a follow-on that would wait for itself', () => {
    const a = j(0);
    const b = a.addChild(j(0));
    const f = a.addFollowOn(j(0));
    b.addChild(f);
    expect(() => planSave({ roots: [a] })).toThrow(/would wait for itself/);
  });
  it('refuses a promise cycle, naming the jobs', () => {
    // y uses x's value, but x is y's child and runs after it.
    const x = j(0);
    const y = j(x.rv());
    y.addChild(x);
    expect(() => planSave({ roots: [y] })).toThrow(/the job graph has a cycle: 'plan' \(plan-[a-z0-9]+\) → 'plan'/);
  });
  it('refuses a promise of a job that is not in the workflow', () => {
    const stray = j(0);
    const a = j(stray.rv());
    expect(() => planSave({ roots: [a] })).toThrow(/not part of the workflow/);
  });
  it('refuses to attach a job twice across saves', () => {
    const a = j(0);
    planSave({ roots: [a] });
    const b = j(0);
    expect(() => b.addChild(a)).toThrow(/already saved/);
  });
});

describe('backoff', () => {
  it('doubles from the base, within [0.5, 1] of nominal, capped', () => {
    const p = { baseMs: 1000, maxMs: 10_000 };
    expect(backoffDelayMs(1, p, { random: () => 0 })).toBe(500);
    expect(backoffDelayMs(1, p, { random: () => 0.999999 })).toBe(1000);
    expect(backoffDelayMs(3, p, { random: () => 0 })).toBe(2000);
    expect(backoffDelayMs(10, p, { random: () => 0.999999 })).toBe(10000);
    expect(backoffDelayMs(4, { baseMs: 0, maxMs: 10_000 })).toBe(0);
  });
  it('never comes back sooner than the server asked (Retry-After)', () => {
    expect(backoffDelayMs(1, { baseMs: 100, maxMs: 1000 }, { random: () => 0, floorMs: 3000 })).toBe(3000);
    expect(backoffDelayMs(5, { baseMs: 100, maxMs: 1000 }, { random: () => 0.999999, floorMs: 10 })).toBe(1000);
  });
});

describe('configuration', () => {
  it('applies defaults and environment variables', () => {
    const c = parseConfig(
      { jobStore: 'x' },
      {
        TOIL_WORKDIR: '/scratch',
        TOIL_KUBERNETES_OWNER: 'demouser',
        TOIL_KUBERNETES_HOST_PATH: '/data/scratch',
        TOIL_AWS_SECRET_NAME: 's3-credentials',
      },
    );
    expect(c).toMatchObject({
      batchSystem: 'single_machine',
      retryCount: 1,
      clean: 'onSuccess',
      defaultCores: 1,
      defaultMemory: 2 ** 31,
      workDir: '/scratch',
      kubernetesOwner: 'demouser',
      kubernetesHostPath: '/data/scratch',
      awsSecretName: 's3-credentials',
    });
  });
  it('names the option in errors', () => {
    expect(() => parseConfig({ jobStore: 'x', retryCount: 'many' }, {})).toThrow(/--retryCount/);
    expect(() => parseConfig({ jobStore: 'x', disableCaching: 'perhaps' }, {})).toThrow(/--disableCaching: expected true or false/);
    expect(() => parseConfig({ jobStore: 'x', clean: 'sometimes' }, {})).toThrow(
      /--clean: expected one of always, onError, never, onSuccess/,
    );
  });
});
