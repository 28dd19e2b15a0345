// RFC 5260 date and currentdate: the date-time of a header field (RFC 5322 §3.3, with the
// obsolete zone names of §4.3) and its date parts (RFC 5260 §4.2) in a zone. Pure; a single
// pass over the field's words.

export interface ZonedTime {
  /** Milliseconds since the epoch (UTC). */
  readonly epoch: number;
  /** The zone's offset east of UTC, in minutes. */
  readonly offset: number;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
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
  let v = value;
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

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function zoneText(offset: number, colon: boolean): string {
  const sign = offset < 0 ? '-' : '+';
  const a = Math.abs(offset);
  return `${sign}${pad(Math.floor(a / 60))}${colon ? ':' : ''}${pad(a % 60)}`;
}

/** RFC 5260 §4.2: the named date part, or null for an unknown part. */
export function datePart(t: ZonedTime, part: string): string | null {
  const d = new Date(t.epoch + t.offset * 60_000); // the wall clock of the zone, read as UTC
  const Y = pad(d.getUTCFullYear(), 4);
  const M = pad(d.getUTCMonth() + 1);
  const D = pad(d.getUTCDate());
  const h = pad(d.getUTCHours());
  const m = pad(d.getUTCMinutes());
  const s = pad(d.getUTCSeconds());
  switch (part.toLowerCase()) {
    case 'year':
      return Y;
    case 'month':
      return M;
    case 'day':
      return D;
    case 'date':
      return `${Y}-${M}-${D}`;
    case 'julian': // Modified Julian Day: days since 1858-11-17
      return String(
        Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) + 3506716800000) / 86400000),
      );
    case 'hour':
      return h;
    case 'minute':
      return m;
    case 'second':
      return s;
    case 'time':
      return `${h}:${m}:${s}`;
    case 'iso8601':
      return `${Y}-${M}-${D}T${h}:${m}:${s}${t.offset === 0 ? 'Z' : zoneText(t.offset, true)}`;
    case 'std11':
      return `${DAYS[d.getUTCDay()]}, ${D} ${MONTHS[d.getUTCMonth()]?.replace(/^./, (c) => c.toUpperCase())} ${Y} ${h}:${m}:${s} ${zoneText(t.offset, false)}`;
    case 'zone':
      return zoneText(t.offset, false);
    case 'weekday':
      return String(d.getUTCDay());
    default:
      return null;
  }
}

/** The local zone's offset at this instant, in minutes east of UTC (RFC 5260 §4.1: without
 *  :zone the date is shown in the local zone). */
export function localOffset(epoch: number): number {
  const o = -new Date(epoch).getTimezoneOffset();
  return o === 0 ? 0 : o;
}
