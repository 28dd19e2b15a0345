// Message submission rules (RFC 6409) as pure functions over the header block of a message:
// - the author (From:, and Sender: when present) must be addresses the authenticated user
//   owns (RFC 6409 §6.1: the MSA may refuse a message whose sender it cannot vouch for);
// - a message without Message-ID: or Date: gets them (RFC 6409 §8.1, §8.3), which receivers
//   such as Gmail expect.
// The service (service.ts) captures the header block while the message streams to the spool.

import addressparser from 'nodemailer/lib/addressparser';
import { rfc5322Date } from './trace.ts';

export interface HeaderField {
  /** Lower-case field name. */
  readonly name: string;
  /** Unfolded value, without the leading space. */
  readonly value: string;
}

/** Collects the header block (up to the empty line) of a streamed message, bounded. */
export class HeaderCapture {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #done = false;
  #complete = false;

  constructor(max: number) {
    this.#max = max;
  }

  feed(chunk: Buffer): void {
    if (this.#done) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    // Look for the end only across what we hold; blocks are small.
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [all];
    // RFC 5322 §2.1: a message may have no header at all; it then starts with the empty line.
    const end = all[0] === 0x0d && all[1] === 0x0a ? -2 : all.indexOf('\r\n\r\n');
    if (end !== -1 && all.length >= 2) {
      this.#chunks = [all.subarray(0, end + 2)];
      this.#done = true;
      this.#complete = true;
    } else if (this.#size >= this.#max) {
      this.#done = true;
    }
  }

  /** The header block, each field ending in CRLF; `complete` is false when it was cut off. */
  result(): { block: Buffer; complete: boolean } {
    return { block: Buffer.concat(this.#chunks), complete: this.#complete };
  }
}

/** Splits a header block into unfolded fields (RFC 5322 §2.2.3). Lines that are not fields are
 *  skipped. Bytes are read as UTF-8 (RFC 6532). */
export function headerFields(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: { name: string; value: string } | null = null;
  for (const line of block.toString('utf8').split('\r\n')) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && current) {
      current.value += line;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0 || !/^[\x21-\x39\x3b-\x7e]+$/.test(line.slice(0, colon))) {
      current = null;
      continue;
    }
    current = { name: line.slice(0, colon).toLowerCase(), value: line.slice(colon + 1).replace(/^[ \t]+/, '') };
    fields.push(current);
  }
  return fields.map((f) => ({ name: f.name, value: f.value.trim() }));
}

/** Every mailbox address of the named fields (groups flattened), as written. */
export function addressesIn(fields: readonly HeaderField[], name: string): string[] {
  const out: string[] = [];
  for (const f of fields) {
    if (f.name !== name) continue;
    for (const a of addressparser(f.value, { flatten: true })) if (a.address) out.push(a.address);
  }
  return out;
}

export type AuthorCheck =
  | { readonly ok: true; readonly authors: readonly string[] }
  | { readonly ok: false; readonly reason: 'no-from' | 'many-from' };

/** The addresses that must be owned: From: (exactly one field, RFC 5322 §3.6) and Sender:. */
export function authorAddresses(fields: readonly HeaderField[]): AuthorCheck {
  const fromFields = fields.filter((f) => f.name === 'from').length;
  if (fromFields === 0) return { ok: false, reason: 'no-from' };
  if (fromFields > 1) return { ok: false, reason: 'many-from' };
  const authors = [...addressesIn(fields, 'from'), ...addressesIn(fields, 'sender')];
  if (authors.length === 0) return { ok: false, reason: 'no-from' };
  return { ok: true, authors };
}

/** Header lines to add for a submitted message: Message-ID and Date when missing. */
export function missingHeaders(
  fields: readonly HeaderField[],
  opts: { readonly id: string; readonly hostname: string; readonly date: Date },
): string {
  let out = '';
  if (!fields.some((f) => f.name === 'message-id')) out += `Message-ID: <${opts.id}@${opts.hostname}>\r\n`;
  if (!fields.some((f) => f.name === 'date')) out += `Date: ${rfc5322Date(opts.date)}\r\n`;
  return out;
}
