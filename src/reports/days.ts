// The UTC days both kinds of reports count and send by (RFC 8460 §4.1, RFC 7489 §7.2: one report
// per day), as YYYY-MM-DD strings, which sort and compare in day order. Pure.

/** The UTC day of a time, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The day `n` days after (or, negative, before) `day`. */
export function addDays(day: string, n: number): string {
  return utcDay(Date.parse(`${day}T00:00:00Z`) + n * 86_400_000);
}

/** Seconds since the epoch of a UTC day's first and last second. */
export function dayRange(day: string): { begin: number; end: number } {
  const begin = Date.parse(`${day}T00:00:00Z`) / 1000;
  return { begin, end: begin + 86_399 };
}
