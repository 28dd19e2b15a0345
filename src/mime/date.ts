// The date-time of a header field (RFC 5322 §3.3, with the obsolete syntax of §4.3: two-digit
// years, named zones, comments), for Sieve's date test (RFC 5260) and JMAP's asDate (RFC 8621
// §4.1.2.6). Pure; a single pass over the field's words.

export interface ZonedTime {
  /** Milliseconds since the epoch (UTC). */
  readonly epoch: number;
  /** The zone's offset east of UTC, in minutes. */
  readonly offset: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const OBSOLETE_ZONES: Readonly<Record<string, number>> = {
  ut: 0,
  gmt: 0,
  z: 0,
  est: -300,
  edt: -240,
  cst: -360,
  cdt: -300,
  mst: -420,
  mdt: -360,
  pst: -480,
  pdt: -420,
};

/** "+hhmm" / "-hhmm" (RFC 5260 §4.1 :zone) to minutes, or null. */
export function parseZone(z: string): number | null {
  if (z.length !== 5 || (z[0] !== '+' && z[0] !== '-')) return null;
  const digits = z.slice(1);
  if (![...digits].every((c) => c >= '0' && c <= '9')) return null;
  const h = Number(digits.slice(0, 2));
  const m = Number(digits.slice(2));
  if (h > 23 || m > 59) return null;
  return (z[0] === '-' ? -1 : 1) * (h * 60 + m);
}

/** RFC 5322 §3.3 date-time: [day ","] day month year hh:mm[:ss] zone. Null when malformed. */
export function parseDateTime(value: string): ZonedTime | null {
  // Comments (RFC 5322 §3.2.2) go; one left open (or nested) ends the value.
  let v = value.replace(/\([^()]*\)/g, ' ');
  const paren = v.indexOf('(');
  if (paren >= 0) v = v.slice(0, paren);
  const comma = v.indexOf(',');
  if (comma >= 0) v = v.slice(comma + 1);
  const w = v.trim().split(/[ \t]+/);
  if (w.length < 4) return null;
  const day = Number(w[0]);
  const month = MONTHS.indexOf((w[1] ?? '').toLowerCase());
  let year = Number(w[2]);
  const t = (w[3] ?? '').split(':');
  if (!Number.isInteger(day) || day < 1 || day > 31 || month < 0 || !Number.isInteger(year)) return null;
  if ((w[2] ?? '').length === 2) year += year < 50 ? 2000 : 1900; // RFC 5322 §4.3
  if (t.length < 2 || t.length > 3 || !t.every((x) => /^\d\d$/.test(x))) return null;
  const [hh, mm, ss] = [Number(t[0]), Number(t[1]), Number(t[2] ?? '0')];
  if (hh > 23 || mm > 59 || ss > 60) return null;
  const zone = w[4] ?? '';
  const offset = parseZone(zone) ?? OBSOLETE_ZONES[zone.toLowerCase()] ?? (zone === '' ? null : 0);
  if (offset === null) return null;
  const local = Date.UTC(year, month, day, hh, mm, ss);
  if (new Date(local).getUTCDate() !== day) return null;
  return { epoch: local - offset * 60_000, offset };
}
