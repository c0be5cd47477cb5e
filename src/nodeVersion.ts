/**
 * Whether the running Node is one that package.json's `engines.node` allows: a small semver
 * range check of our own (the `semver` package is not a production dependency, and this runs
 * before anything that needs a newer Node is loaded, so it uses nothing but the language).
 *
 * Ranges: alternatives joined by `||`, each a list of comparators that must all hold:
 * `>=22`, `>22.1`, `<=23.0.0`, `<24`, `=22.5.0`, a bare (partial) version such as `22` or
 * `22.x`, `^22.5.0`, `~22.5`, and hyphen ranges `22.0.0 - 23`. Prerelease tags are ignored.
 * A range this does not understand is reported as such rather than guessed at.
 */

type Triple = [number, number, number];

/** A parsed version, with how many of its parts were given (`22` → 1, `22.5` → 2). */
interface Parsed {
  v: Triple;
  given: number;
}

const VERSION = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+][0-9A-Za-z.+-]*)?$/;

function parsePartial(text: string): Parsed | undefined {
  const m = VERSION.exec(text);
  if (!m) return undefined;
  const parts = [m[1], m[2], m[3]];
  let given = 0;
  for (const p of parts) {
    if (p === undefined || /^[xX*]$/.test(p)) break;
    given++;
  }
  const v = parts.map((p, i) => (i < given ? Number(p) : 0)) as Triple;
  return { v, given };
}

function compare(a: Triple, b: Triple): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** The first version above every version that `p` names (`22.5` → 22.6.0; `22` → 23.0.0). */
function bumped(p: Parsed, at: number): Triple {
  const v: Triple = [0, 0, 0];
  for (let i = 0; i < at; i++) v[i] = p.v[i]!;
  v[at - 1]!++;
  return v;
}

type Test = (v: Triple) => boolean;

const atLeast =
  (lo: Triple): Test =>
  (v) =>
    compare(v, lo) >= 0;
const below =
  (hi: Triple): Test =>
  (v) =>
    compare(v, hi) < 0;

/** The tests one comparator stands for, or undefined if it is not one we understand. */
function comparator(text: string): Test[] | undefined {
  const m = /^(>=|<=|>|<|=|\^|~)?(.*)$/.exec(text)!;
  const op = m[1] ?? '';
  const p = parsePartial(m[2]!);
  if (!p) return undefined;
  const any = p.given === 0;
  switch (op) {
    case '>=':
      return [atLeast(p.v)];
    case '>':
      return any ? [() => false] : [atLeast(bumped(p, p.given))];
    case '<':
      return any ? [() => false] : [below(p.v)];
    case '<=':
      return any ? [] : [below(bumped(p, p.given))];
    case '^': {
      // Up to the next change of the first non-zero part given (^0.2.3 → <0.3.0).
      const first = p.v.findIndex((n, i) => n !== 0 || i === p.given - 1);
      return any ? [] : [atLeast(p.v), below(bumped(p, Math.max(first, 0) + 1))];
    }
    case '~':
      return any ? [] : [atLeast(p.v), below(bumped(p, Math.min(p.given, 2)))];
    default:
      return any ? [] : [atLeast(p.v), below(bumped(p, p.given))];
  }
}

/** The tests of one `||` alternative, or undefined if it holds something we do not understand. */
function alternative(text: string): Test[] | undefined {
  const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(text);
  if (hyphen) {
    const lo = comparator(`>=${hyphen[1]}`);
    const hi = comparator(`<=${hyphen[2]}`);
    return lo && hi ? [...lo, ...hi] : undefined;
  }
  const tests: Test[] = [];
  for (const c of text.replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/)) {
    if (c === '') continue;
    const t = comparator(c);
    if (!t) return undefined;
    tests.push(...t);
  }
  return tests;
}

/** Whether `version` (e.g. `v20.20.2`) satisfies `range`; undefined when the range is not understood. */
export function satisfies(version: string, range: string): boolean | undefined {
  const v = parsePartial(version);
  if (!v || v.given !== 3) return undefined;
  let understood = false;
  for (const alt of range.trim().split('||')) {
    const tests = alternative(alt.trim());
    if (!tests) continue;
    understood = true;
    if (tests.every((t) => t(v.v))) return true;
  }
  return understood ? false : undefined;
}

/**
 * Why this Node cannot run toil-ts (one line), or undefined when it can (or when the range
 * cannot be judged: then nothing is refused).
 */
export function nodeVersionProblem(range: string | undefined, version: string, execPath: string): string | undefined {
  if (range === undefined || satisfies(version, range) !== false) return undefined;
  return `toil-ts needs Node ${range.trim()} (package.json "engines"); this is Node ${version} (${execPath})`;
}
