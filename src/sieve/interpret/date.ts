// RFC 5260 date and currentdate: the date-time of a header field (mime/date.ts) and its date
// parts (RFC 5260 §4.2) in a zone. Pure.

import type { ZonedTime } from '../../mime/date.ts';

export { parseDateTime, parseZone, type ZonedTime } from '../../mime/date.ts';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

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
