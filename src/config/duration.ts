// Durations in config: "500ms", "30s", "5m", "2h", "1d", or a number of milliseconds.

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(v: string | number): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v) : null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(v);
  if (!m) return null;
  const unit = UNITS[m[2] ?? ''];
  return unit === undefined ? null : Math.round(Number(m[1]) * unit);
}
