// Header edits a filter asks for, on the raw header block (fields ending in CRLF, no empty
// line), byte-exact everywhere else: remove fields by name and position (rspamd's
// milter.remove_headers and the milter protocol count the same way: 1 is the first field of
// that name, -1 the last, 0 every one), and replace the Subject. A field is its first line and
// the lines after it that start with a space or tab (RFC 5322 §2.2.3). Pure and linear in the
// block (bounded by [smtp] max_header_size) times the number of edits (bounded by LIMITS.spam).

import { encodedWords } from '../core/mime-encode.ts';
import type { Removal } from './rspamd-verdict.ts';

interface Field {
  /** Lower case; '' for a line that is no field (kept as it is). */
  readonly name: string;
  readonly text: string;
}

function fieldsOf(block: string): Field[] {
  const out: Field[] = [];
  const lines = block.split('\r\n');
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    const first = line.charCodeAt(0);
    const last = out.at(-1);
    if ((first === 0x20 || first === 0x09) && last) {
      out[out.length - 1] = { name: last.name, text: `${last.text}${line}\r\n` };
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).trimEnd().toLowerCase() : '';
    out.push({ name, text: `${line}\r\n` });
  }
  return out;
}

/** The block with the removals and the new Subject applied; null when nothing changed. */
export function editHeader(
  block: Buffer,
  edits: { readonly remove: readonly Removal[]; readonly subject: string | null },
): Buffer | null {
  const fields = fieldsOf(block.toString('latin1'));
  const drop = new Set<number>();
  for (const r of edits.remove) {
    const at: number[] = [];
    fields.forEach((f, i) => {
      if (f.name === r.name) at.push(i);
    });
    if (r.order === 0) for (const i of at) drop.add(i);
    else {
      const i = r.order > 0 ? at[r.order - 1] : at[at.length + r.order];
      if (i !== undefined) drop.add(i);
    }
  }
  let subjectAt = -1;
  if (edits.subject !== null) {
    fields.forEach((f, i) => {
      if (f.name !== 'subject') return;
      if (subjectAt < 0 && !drop.has(i)) subjectAt = i;
      else drop.add(i); // one Subject (RFC 5322 §3.6: at most one)
    });
  }
  if (drop.size === 0 && edits.subject === null) return null;
  let out = '';
  fields.forEach((f, i) => {
    if (i === subjectAt) out += subjectField(edits.subject ?? '');
    else if (!drop.has(i)) out += f.text;
  });
  if (edits.subject !== null && subjectAt < 0) out += subjectField(edits.subject);
  return Buffer.from(out, 'latin1');
}

/** `Subject: …` in bytes-as-latin1: ASCII as it is, anything else as RFC 2047 encoded words
 *  (core/mime-encode.ts). */
export function subjectField(subject: string): string {
  return `Subject: ${encodedWords(subject, 9)}\r\n`;
}
