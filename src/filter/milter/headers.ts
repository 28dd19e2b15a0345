// The header block as a milter session sees it and edits it (pure). Fields are kept as latin1
// text (one character per byte) in their order, each with its raw value (what follows the
// colon, folding included), so that unchanged fields are written back byte for byte.
//
// The edits follow libmilter's documented semantics (smfi_addheader, smfi_chgheader,
// smfi_insheader) on RFC 5322 §2.2 fields:
//   add     appends the field at the end of the header;
//   change  the index-th field of that name (1-based, names compared without case, RFC 5322
//           §1.2.2); an empty value deletes it; past the last one a new field is appended;
//   insert  at the index-th position of the whole header (0: on top), appended past the end.
// A value from a milter folds with LF (the MTA adds the CR): every line break must be followed
// by white space (RFC 5322 §2.2.3), else the value could end the header or forge a field.

import type { HeaderEdit, HeaderLine } from './client.ts';
import { MilterFailure } from './connection.ts';

/** Splits a header block (fields each ending in CRLF, no empty line) into lines. */
export function parseHeader(block: Buffer): HeaderLine[] {
  const text = block.toString('latin1');
  const out: { name: string; value: string | null; gap?: string }[] = [];
  let at = 0;
  while (at < text.length) {
    let end = text.indexOf('\r\n', at);
    if (end < 0) end = text.length;
    const line = text.slice(at, end);
    at = end + 2;
    const prev = out[out.length - 1];
    const first = line.charCodeAt(0);
    if ((first === 0x20 || first === 0x09) && prev) {
      // RFC 5322 §2.2.3: a folded continuation of the line before.
      if (prev.value === null) prev.name += `\r\n${line}`;
      else prev.value += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    let n = 0;
    while (n < line.length && isFtext(line.charCodeAt(n))) n++;
    // RFC 5322 §3.6.8 field name, then (obsolete, §4.5) white space before the colon.
    let k = n;
    while (k < line.length && (line.charCodeAt(k) === 0x20 || line.charCodeAt(k) === 0x09)) k++;
    if (n > 0 && colon === k) {
      const field = { name: line.slice(0, n), value: line.slice(colon + 1) };
      out.push(k > n ? { ...field, gap: line.slice(n, k) } : field);
    } else out.push({ name: line, value: null });
  }
  return out;
}

function isFtext(c: number): boolean {
  return c >= 33 && c <= 126 && c !== 0x3a;
}

/** The header block again: each line with its CRLF. */
export function serializeHeader(fields: readonly HeaderLine[]): Buffer {
  let s = '';
  for (const f of fields) s += f.value === null ? `${f.name}\r\n` : `${f.name}${f.gap ?? ''}:${f.value}\r\n`;
  return Buffer.from(s, 'latin1');
}

/** A milter's value as the raw value of a field; throws MilterFailure when it would break the
 *  header. Without SMFIP_HDR_LEADSPC a space goes after the colon, as sendmail writes it. */
export function fieldValue(value: string, leadingSpace: boolean): string {
  const lines = value.replaceAll('\r\n', '\n').split('\n');
  for (const [i, l] of lines.entries()) {
    if (l.includes('\r')) throw new MilterFailure('header value with a bare CR');
    if (i > 0 && !(l.charCodeAt(0) === 0x20 || l.charCodeAt(0) === 0x09)) {
      throw new MilterFailure('header value with a line break not followed by white space');
    }
  }
  const v = lines.join('\r\n');
  return leadingSpace || v === '' ? v : ` ${v}`;
}

/** Applies one milter's edits in the order it sent them. */
export function applyEdits(
  fields: readonly HeaderLine[],
  edits: readonly HeaderEdit[],
  leadingSpace: boolean,
): HeaderLine[] {
  const out = [...fields];
  for (const e of edits) {
    const value = fieldValue(e.value, leadingSpace);
    if (e.kind === 'addheader') {
      out.push({ name: e.name, value });
    } else if (e.kind === 'insheader') {
      out.splice(Math.min(e.index, out.length), 0, { name: e.name, value });
    } else {
      const want = Math.max(e.index, 1);
      const lower = e.name.toLowerCase();
      let seen = 0;
      let at = -1;
      for (let i = 0; i < out.length; i++) {
        const f = out[i] as HeaderLine;
        if (f.value !== null && f.name.toLowerCase() === lower && ++seen === want) {
          at = i;
          break;
        }
      }
      if (at < 0) {
        if (e.value !== '') out.push({ name: e.name, value });
      } else if (e.value === '') {
        out.splice(at, 1);
      } else {
        out[at] = { ...(out[at] as HeaderLine), value };
      }
    }
  }
  return out;
}
