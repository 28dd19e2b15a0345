// What the CLI prints: lines on standard output, and aligned tables.

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Columns padded to their widest cell (the last one is not padded). */
export function table(header: string[], rows: string[][], out: (line: string) => void = say): void {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  for (const r of all) out(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '));
}

/** A duration as 42s, 5m, 3h or 2d. */
export function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}
