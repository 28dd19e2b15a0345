// The words of a text search, one definition for the full-text index (store/search/match.ts,
// SQLite FTS5's unicode61 tokenizer with remove_diacritics 2) and for the emails read one by one
// (JMAP Email/query's scan of what the index has not indexed yet): a value is split into words
// and "phrases in double quotes"; a word matches a word of the text it is the start of (so
// whole words and prefixes), a phrase its words in a row (the last one whole); letters compare
// without case and accents. docs/jmap-email.md "Search".

export interface SearchTerm {
  readonly text: string;
  /** A "quoted phrase" (its last word whole); otherwise a word, matching prefixes. */
  readonly phrase: boolean;
}

/** The terms of a value; terms with no letter or digit are left out (they match anything).
 *  null when there are more than `maxTerms`; a word is cut to `maxChars` (a phrase to 8 times). */
export function searchTerms(value: string, maxTerms: number, maxChars: number): SearchTerm[] | null {
  const out: SearchTerm[] = [];
  for (const m of value.matchAll(/"([^"]*)"|(\S+)/g)) {
    const phrase = m[1] !== undefined;
    const text = (m[1] ?? m[2] ?? '').slice(0, phrase ? maxChars * 8 : maxChars);
    if (!/[\p{L}\p{N}]/u.test(text)) continue;
    if (out.length === maxTerms) return null;
    out.push({ text, phrase });
  }
  return out;
}

/** Text as the tokenizer sees it: lower case, accents removed, split at anything that is not
 *  a letter or a digit. */
export function searchTokens(text: string): string[] {
  return text
    .normalize('NFD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((t) => t.length > 0);
}

/** Whether the term is in the text's tokens (searchTokens). */
export function termIn(term: SearchTerm, tokens: readonly string[]): boolean {
  const want = searchTokens(term.text);
  const n = want.length;
  if (n === 0) return true;
  for (let i = 0; i + n <= tokens.length; i++) {
    let j = 0;
    while (j < n - 1 && tokens[i + j] === want[j]) j++;
    if (j < n - 1) continue;
    const last = tokens[i + n - 1] as string;
    const w = want[n - 1] as string;
    if (term.phrase ? last === w : last.startsWith(w)) return true;
  }
  return false;
}
