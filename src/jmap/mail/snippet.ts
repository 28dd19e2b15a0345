// SearchSnippet (RFC 8621 §5): the subject and a piece of the body text with the words of the
// query's text conditions in <mark> tags, everything else HTML-escaped (&, <, >, and quotes);
// null when nothing matches. The preview is at most 255 octets, markup included (§5). Matching
// is by substring, case-insensitive (Unicode simple case folding), as the search itself does.
// Bounded: at most LIMITS.jmapMail.maxSnippetTerms terms of at most 100 characters each.

import { LIMITS } from '../../core/limits.ts';

const MAX_PREVIEW_OCTETS = 255;
/** Characters shown before the first match, for context. */
const LEAD = 40;
/** Characters of body text searched for the preview's match. */
const MAX_BODY = 1024 * 1024;

export interface Snippet {
  readonly subject: string | null;
  readonly preview: string | null;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** The words of the query's text (text, subject, body conditions), to mark. */
export function snippetTerms(texts: readonly string[]): string[] {
  const words = new Set<string>();
  // Quotes (phrases, docs/jmap-email.md "Search") are not part of the words.
  for (const t of texts) for (const w of t.replace(/"/g, ' ').split(/\s+/)) if (w !== '') words.add(w.slice(0, 100));
  return [...words].slice(0, LIMITS.jmapMail.maxSnippetTerms);
}

/** [start, end) of each match, merged where they touch or overlap. */
function matches(text: string, allTerms: readonly string[]): [number, number][] {
  const terms = allTerms.filter((t) => t !== '').slice(0, LIMITS.jmapMail.maxSnippetTerms);
  if (terms.length === 0 || text === '') return [];
  let re: RegExp;
  try {
    re = new RegExp(
      [...terms]
        .sort((a, b) => b.length - a.length)
        .map((t) => t.slice(0, 100).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('|'),
      'giu',
    );
  } catch {
    return [];
  }
  const out: [number, number][] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const last = out.at(-1);
    if (last && m.index <= last[1]) last[1] = Math.max(last[1], m.index + m[0].length);
    else out.push([m.index, m.index + m[0].length]);
  }
  return out;
}

/** `text` from `from`, escaped and marked, at most `budget` UTF-8 octets (Infinity: all). */
function render(text: string, ranges: readonly [number, number][], from: number, budget: number): string {
  let out = '';
  let used = 0;
  let pos = from;
  const add = (s: string): boolean => {
    const n = Buffer.byteLength(s);
    if (used + n > budget) return false;
    out += s;
    used += n;
    return true;
  };
  for (const [start, end] of [...ranges.filter(([, e]) => e > from), [text.length, text.length] as [number, number]]) {
    // The plain text before the match, as much of it as fits, character by character.
    for (const ch of text.slice(pos, Math.max(pos, start))) if (!add(escapeHtml(ch))) return out;
    if (start >= text.length) break;
    if (!add(`<mark>${escapeHtml(text.slice(Math.max(start, from), end))}</mark>`)) return out;
    pos = end;
  }
  return out;
}

export function searchSnippet(terms: readonly string[], subject: string | null, body: string | null): Snippet {
  let subjectOut: string | null = null;
  if (subject) {
    const s = subject.slice(0, 10 * LIMITS.jmapMail.maxSnippetChars);
    const r = matches(s, terms);
    if (r.length > 0) subjectOut = render(s, r, 0, Number.POSITIVE_INFINITY);
  }
  let previewOut: string | null = null;
  if (body) {
    const text = body.slice(0, MAX_BODY).replace(/\s+/g, ' ');
    const r = matches(text, terms);
    const first = r[0];
    if (first) {
      // Start a little before the first match, at a word boundary when there is one.
      let from = Math.max(0, first[0] - LEAD);
      const space = text.indexOf(' ', from);
      if (from > 0 && space >= 0 && space < first[0]) from = space + 1;
      previewOut = render(text, r, from, MAX_PREVIEW_OCTETS).trimEnd();
    }
  }
  return { subject: subjectOut, preview: previewOut };
}
