// What the search index (store/search/) keeps of a message: the decoded From, To, Cc, Bcc
// (names and addresses as written) and Subject fields, and the text of its text/* parts (HTML
// as text), at most LIMITS.search.maxTextChars characters of it. The store's search indexer
// (store/search/indexer.ts) reads it (docs/architecture.md §1: store/ uses core and mime/).

import { decodeEncodedWords } from '../core/encoded-words.ts';
import { LIMITS } from '../core/limits.ts';
import { bodyText } from './body-text.ts';
import { type ByteReader, headerValue, parseStructure } from './structure.ts';

export interface SearchFields {
  readonly from: string;
  readonly to: string;
  readonly cc: string;
  readonly bcc: string;
  readonly subject: string;
  readonly body: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A header value read as Latin-1 (headerValue), as UTF-8 when its bytes are (RFC 6532
 *  internationalized headers), else as it is. */
function utf8(latin1: string): string {
  if (!/[\x80-\xff]/.test(latin1)) return latin1;
  try {
    return UTF8.decode(Buffer.from(latin1, 'latin1'));
  } catch {
    return latin1;
  }
}

export async function searchFields(reader: ByteReader, size: number): Promise<SearchFields> {
  const root = await parseStructure(reader, size);
  const field = (name: string): string => decodeEncodedWords(utf8(headerValue(root.header, name) ?? ''));
  return {
    from: field('from'),
    to: field('to'),
    cc: field('cc'),
    bcc: field('bcc'),
    subject: field('subject'),
    body: await bodyText(reader, root, { maxChars: LIMITS.search.maxTextChars, html: true }),
  };
}
