// Sequence sets as sorted, merged number ranges (RFC 9051 §9 sequence-set: "the order of the
// numbers and ranges is irrelevant", duplicates and overlaps allowed). A client chooses the set:
// 10,000 copies of "1:*" in one line must cost what one "1:*" costs, so a set is merged once,
// O(r log r) for r ranges, and then walked once against the mailbox (O(messages)) or asked by
// binary search (O(log r)) per message, never range by range for every message.

/** Ascending, non-overlapping, non-adjacent closed ranges [lo, hi]. */
export type Ranges = readonly (readonly [number, number])[];

/** Merges ranges given in any order (each end in any order) into Ranges. */
export function mergeRanges(ranges: Iterable<readonly [number, number]>): Ranges {
  const sorted: [number, number][] = [];
  for (const [a, b] of ranges) sorted.push(a <= b ? [a, b] : [b, a]);
  sorted.sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** Whether `n` lies in one of the ranges (binary search). */
export function inRanges(ranges: Ranges, n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid] as readonly [number, number];
    if (n < r[0]) hi = mid - 1;
    else if (n > r[1]) lo = mid + 1;
    else return true;
  }
  return false;
}
