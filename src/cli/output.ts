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
