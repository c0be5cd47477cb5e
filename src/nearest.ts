/**
 * The nearest of some names to a word, for the "did you mean …?" of error messages. The distance
 * is the optimal string alignment distance: an inserted, deleted or replaced character, or two
 * neighbouring characters swapped, each count 1 (`defaultMemroy` is 1 from `defaultMemory`,
 * `us-wset-2` 1 from `us-west-2`). Case is ignored.
 */

/** The candidate nearest to `word` and its distance; the first of equals wins. Undefined when there are none. */
export function nearest(word: string, candidates: readonly string[]): { name: string; distance: number } | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (!best || d < best.distance) best = { name: c, distance: d };
  }
  return best;
}

/** The candidate nearest to `word` when it is close enough to be a likely typo (a quarter of its length, at least 1). */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const best = nearest(word, candidates);
  return best && best.distance <= Math.max(1, Math.floor(word.length / 4)) ? best.name : undefined;
}

function editDistance(a: string, b: string): number {
  // rows i-2, i-1 and i of the table: d[i][j] is the distance between a[0, i) and b[0, j)
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, before[j - 2]! + 1);
      row[j] = d;
    }
    before = prev;
    prev = row;
  }
  return prev[b.length]!;
}
