// Encoding values in server responses (RFC 9051 §9): strings as atoms, quoted strings or
// literals; flag lists; dates; sequence sets for UIDPLUS response codes. Pure.

const ATOM_SAFE = /^[!#$&'+,\-./0-9:;<=>?@A-Z^_`a-z|}~[]+$/;

/** A string as `quoted` when it can be, else as a literal (RFC 9051 §4.3). */
export function str(s: string): string {
  if (/^[\x20-\x7e]*$/.test(s) && s.length < 1024) return `"${s.replace(/[\\"]/g, '\\$&')}"`;
  return `{${Buffer.byteLength(s)}}\r\n${s}`;
}

/** astring: an atom when safe, else a string. */
export function astr(s: string): string {
  return s !== '' && ATOM_SAFE.test(s) && s.toUpperCase() !== 'NIL' ? s : str(s);
}

export function nstr(s: string | null): string {
  return s === null ? 'NIL' : str(s);
}

export function flagList(flags: readonly string[]): string {
  return `(${flags.join(' ')})`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** INTERNALDATE form: "dd-Mon-yyyy hh:mm:ss +0000" (RFC 9051 §9 date-time), in UTC. */
export function imapDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `"${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000"`;
}

/** Parses an APPEND date-time ("dd-Mon-yyyy hh:mm:ss +zzzz"); null when invalid. */
export function parseImapDate(s: string): Date | null {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(s);
  if (!m) return null;
  const month = MONTHS.findIndex((x) => x.toLowerCase() === (m[2] ?? '').toLowerCase());
  if (month < 0) return null;
  const offset = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  const t = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - offset * 60_000;
  return Number.isNaN(t) ? null : new Date(t);
}

/** Compact sequence set for a sorted or unsorted list of numbers: "1:3,7,9:10". */
export function seqSet(nums: readonly number[]): string {
  const sorted = [...nums].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}:${sorted[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
