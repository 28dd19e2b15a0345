// Text conditions to FTS5 MATCH expressions. The client's words never reach FTS5 as syntax:
// every word and phrase becomes an FTS5 string ("…", an embedded quote doubled), so operators
// (AND, OR, NOT, NEAR), column filters, parentheses and stars the client typed are just text
// the tokenizer splits. The semantics (RFC 8621 §4.4.1 leaves them to the server;
// docs/jmap-email.md "Search"): the value is split into words, and "phrases in double quotes";
// an email matches when every word is the whole or the start of a word of the field (prefix
// query), and every phrase is there as consecutive words; case and accents are ignored (the
// unicode61 tokenizer with remove_diacritics 2, applied to the query as to the text).

import { LIMITS } from '../../core/limits.ts';
import { searchTerms } from '../../core/search-terms.ts';
import type { TextCondition, TextField } from '../mailboxes.ts';

/** The FTS5 columns (search/db.ts) of each condition; text: every column. */
const COLUMNS: Record<TextField, string | null> = {
  text: null,
  from: 'f_from',
  to: 'f_to',
  cc: 'f_cc',
  bcc: 'f_bcc',
  subject: 'subject',
  body: 'body',
};

const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;

/** The MATCH expression for conditions that must all hold: `{ match: null }` matches every
 *  email (no condition has a word); null when a condition has too many terms. */
export function matchExpression(conditions: readonly TextCondition[]): { match: string | null } | null {
  const parts: string[] = [];
  for (const c of conditions) {
    const terms = searchTerms(c.value, LIMITS.search.maxTerms, LIMITS.search.maxTermChars);
    if (terms === null) return null;
    if (terms.length === 0) continue;
    const expr = terms.map((t) => (t.phrase ? quote(t.text) : `${quote(t.text)} *`)).join(' AND ');
    const col = COLUMNS[c.field];
    parts.push(col === null ? `(${expr})` : `({${col}} : (${expr}))`);
  }
  return { match: parts.length > 0 ? parts.join(' AND ') : null };
}
