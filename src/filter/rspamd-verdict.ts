// What rspamd's reply means for a message (docs/spam.md "rspamd"), pure: the reply in, one
// verdict out. rspamd's actions (https://rspamd.com/doc/developers/protocol.html):
//   reject           -> refuse (550 5.7.1)
//   soft reject      -> defer (451 4.7.1)
//   greylist         -> our greylisting decides (451 4.7.1 until the sender retried)
//   rewrite subject  -> deliver to Junk with the Subject rspamd gives
//   add header       -> deliver to Junk
//   no action        -> deliver (and any action we do not know: rspamd's operator invented it)
// Every delivered message gets rspamd's milter.add_headers / remove_headers (checked: names
// of RFC 5322 ftext, values one folded field, bounded counts) and our X-Spam-Status.
// Nothing rspamd sends reaches a header or a reply unchecked: it is a peer over the network.

import { LIMITS } from '../core/limits.ts';
import type { SPAM_SCAN_ACTIONS } from '../core/metrics.ts';
import { oneLine } from '../core/text.ts';
import type { RspamdReply } from './rspamd.ts';

/** A field to remove: rspamd's order (0 every one, n the n-th from the top, -n from the end). */
export interface Removal {
  /** Lower case. */
  readonly name: string;
  readonly order: number;
}

export type SpamVerdict =
  | { readonly kind: 'reject'; readonly text: string | null }
  | { readonly kind: 'soft-reject'; readonly text: string | null }
  | { readonly kind: 'greylist' }
  | {
      readonly kind: 'deliver';
      /** Deliver to Junk (add header, rewrite subject). */
      readonly junk: boolean;
      /** Fields to put on top of the message, each ending in CRLF ('' for none). */
      readonly add: string;
      readonly remove: readonly Removal[];
      /** The new Subject (unfolded, unencoded), or null to keep it. */
      readonly subject: string | null;
    };

/** Closed set of metric labels (arcline_spam_scans_total{action}). */
export type ScanLabel = (typeof SPAM_SCAN_ACTIONS)[number];

const LABELS: Readonly<Record<string, ScanLabel>> = {
  reject: 'reject',
  'soft reject': 'soft_reject',
  greylist: 'greylist',
  'rewrite subject': 'rewrite_subject',
  'add header': 'add_header',
  'no action': 'no_action',
};

export function scanLabel(action: string): ScanLabel {
  return LABELS[action] ?? 'other';
}

/** Our header's name; removed from every message we scan (a sender's copy is a forgery). */
export const STATUS_FIELD = 'X-Spam-Status';

// RFC 5322 §3.6.8: field-name = 1*ftext (printable US-ASCII but ":").
const FIELD_NAME = /^[!-9;-~]{1,76}$/;
// rspamd's symbol names; anything else is left out of our header.
const SYMBOL = /^[A-Za-z0-9_.-]{1,64}$/;

export function spamVerdict(reply: RspamdReply, o: { readonly statusHeader: boolean }): SpamVerdict {
  const text = replyText(reply);
  switch (reply.action) {
    case 'reject':
      return { kind: 'reject', text };
    case 'soft reject':
      return { kind: 'soft-reject', text };
    case 'greylist':
      return { kind: 'greylist' };
  }
  const junk = reply.action === 'add header' || reply.action === 'rewrite subject';
  let add = addedFields(reply);
  if (o.statusHeader) add = statusField(reply, junk) + add;
  const subject =
    reply.action === 'rewrite subject' && reply.subject !== undefined
      ? oneLine(reply.subject, LIMITS.spam.maxSubjectBytes)
      : null;
  return { kind: 'deliver', junk, add, remove: removals(reply), subject };
}

/** rspamd's messages.smtp_message (a module's word to the sender), one printable ASCII line. */
function replyText(reply: RspamdReply): string | null {
  const m = reply.messages?.smtp_message;
  if (m === undefined) return null;
  const t = oneLine(m.replace(/[^\x20-\x7e]+/g, ' '), LIMITS.spam.maxReplyTextBytes);
  return t === '' ? null : t;
}

/** `X-Spam-Status: Yes, score=7.30 required=15.00 action="add header" tests=A,B` (SpamAssassin's
 *  form, folded at the symbols). Yes when the message goes to Junk. */
export function statusField(reply: RspamdReply, junk: boolean): string {
  const names = Object.keys(reply.symbols ?? {})
    .filter((n) => SYMBOL.test(n))
    .sort()
    .slice(0, LIMITS.spam.maxStatusSymbols);
  const action = oneLine(reply.action.replace(/[^a-z _-]/gi, ''), 32);
  let out = `${STATUS_FIELD}: ${junk ? 'Yes' : 'No'}, score=${num(reply.score)} required=${num(reply.required_score)} action="${action}"\r\n\ttests=`;
  if (names.length === 0) return `${out}none\r\n`;
  let line = 7; // "\ttests="
  for (let i = 0; i < names.length; i++) {
    const part = `${names[i]}${i < names.length - 1 ? ',' : ''}`;
    if (line + part.length > 76) {
      out += '\r\n\t';
      line = 1;
    }
    out += part;
    line += part.length;
  }
  return `${out}\r\n`;
}

function num(n: number): string {
  return Number.isFinite(n) ? n.toFixed(2) : '0.00';
}

/** milter.add_headers: `{name: value | {value, order} | [...]}`. */
function addedFields(reply: RspamdReply): string {
  const wanted: { name: string; value: string; order: number }[] = [];
  for (const [name, v] of Object.entries(reply.milter?.add_headers ?? {})) {
    if (!FIELD_NAME.test(name) || name.toLowerCase() === STATUS_FIELD.toLowerCase()) continue;
    for (const one of Array.isArray(v) ? v : [v]) {
      const value = typeof one === 'string' ? one : one.value;
      const order = typeof one === 'string' ? 0 : (one.order ?? 0);
      wanted.push({ name, value, order });
    }
  }
  // rspamd's order: n >= 0 inserts at position n, a negative one appends. Ours all go on top of
  // the message; among themselves the inserted come first, in their order.
  const key = (o: number) => (o < 0 ? Number.POSITIVE_INFINITY : o);
  wanted.sort((a, b) => key(a.order) - key(b.order));
  let out = '';
  for (const f of wanted.slice(0, LIMITS.spam.maxAddedHeaders)) {
    const value = foldedValue(f.value);
    if (value !== null) out += `${f.name}: ${value}\r\n`;
  }
  return out;
}

/** A value as one field: its line breaks become folds (RFC 5322 §2.2.3), other controls go. */
export function foldedValue(v: string): string | null {
  if (Buffer.byteLength(v) > LIMITS.spam.maxAddedHeaderBytes) return null;
  const lines = v
    .split(/\r?\n/)
    .map((l) => oneLine(l, 900))
    .filter((l) => l !== '');
  return lines.length === 0 ? null : lines.join('\r\n\t');
}

/** milter.remove_headers, and always our own field whatever rspamd says. */
function removals(reply: RspamdReply): Removal[] {
  const out: Removal[] = [{ name: STATUS_FIELD.toLowerCase(), order: 0 }];
  for (const [name, order] of Object.entries(reply.milter?.remove_headers ?? {})) {
    if (out.length > LIMITS.spam.maxRemovedHeaders) break;
    if (FIELD_NAME.test(name) && Number.isInteger(order)) out.push({ name: name.toLowerCase(), order });
  }
  return out;
}
