// Splitting test input at arbitrary points, for properties that a result must not depend on
// how the bytes arrived (design.md convention 2: parsers survive any chunking).

/** `s` cut at each point in `cuts` (taken modulo the length, deduplicated, in order). */
export function splitAt(s: string, cuts: readonly number[]): string[] {
  const points = [...new Set(cuts.map((c) => c % (s.length + 1)))].sort((a, b) => a - b);
  const chunks: string[] = [];
  let prev = 0;
  for (const p of points) {
    chunks.push(s.slice(prev, p));
    prev = p;
  }
  chunks.push(s.slice(prev));
  return chunks;
}
