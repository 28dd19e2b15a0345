// Message flags in Maildir file names (cr.yp.to/proto/maildir.html "info semantics"), as Dovecot
// and mutt read them: `<base>:2,<letters>`, letters sorted in ASCII order.
//   D \Draft   F \Flagged   P (passed: "$Forwarded")   R \Answered   S \Seen   T \Deleted
// Keywords take the letters a-z, mapped per mailbox in Dovecot's `dovecot-keywords` file
// ("<index> <keyword>" lines; index 0 is "a"). At most 26 keywords per mailbox can live in file
// names; more are refused (Dovecot behaves the same). \Recent is never stored: it is a
// per-session property (RFC 3501 §2.3.2).

export const SYSTEM_LETTERS: Readonly<Record<string, string>> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  $Forwarded: 'P',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { canonicalSystemFlag } from '../names.ts';

const LETTER_TO_SYSTEM = Object.fromEntries(Object.entries(SYSTEM_LETTERS).map(([f, l]) => [l, f]));

export const MAX_KEYWORDS = 26;

/** Splits a Maildir file name into its unique base and its flag letters. */
export function splitName(name: string): { base: string; letters: string } {
  const i = name.indexOf(':2,');
  return i < 0 ? { base: name, letters: '' } : { base: name.slice(0, i), letters: name.slice(i + 3) };
}

/** Flag letters -> IMAP flags, using the mailbox's keyword table. Unknown letters are ignored. */
export function lettersToFlags(letters: string, keywords: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of letters) {
    const sys = LETTER_TO_SYSTEM[l];
    if (sys) out.push(sys);
    else if (l >= 'a' && l <= 'z') {
      const kw = keywords[l.charCodeAt(0) - 97];
      if (kw) out.push(kw);
    }
  }
  return out;
}

/** IMAP flags -> sorted letters. Keywords missing from `keywords` are appended to it (the
 *  caller persists the table); returns null when the table is full. */
export function flagsToLetters(flags: readonly string[], keywords: string[]): string | null {
  const letters = new Set<string>();
  for (const f of flags) {
    const sys = SYSTEM_LETTERS[f] ?? SYSTEM_LETTERS[canonicalSystemFlag(f) ?? ''];
    if (sys) {
      letters.add(sys);
      continue;
    }
    if (f.startsWith('\\')) continue; // \Recent and unknown system flags are not stored
    let idx = keywords.findIndex((k) => k.toLowerCase() === f.toLowerCase());
    if (idx < 0) {
      if (keywords.length >= MAX_KEYWORDS) return null;
      keywords.push(f);
      idx = keywords.length - 1;
    }
    letters.add(String.fromCharCode(97 + idx));
  }
  return [...letters].sort().join('');
}

/** Parses a dovecot-keywords file. */
export function parseKeywords(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (m && Number(m[1]) < MAX_KEYWORDS) out[Number(m[1])] = m[2] as string;
  }
  return Array.from(out, (k) => k ?? '');
}

export function formatKeywords(keywords: readonly string[]): string {
  return keywords.map((k, i) => `${i} ${k}\n`).join('');
}

/** The keyword table of the Maildir in `dir` (none when it has no dovecot-keywords file). */
export async function readKeywords(dir: string): Promise<string[]> {
  try {
    return parseKeywords(await readFile(join(dir, 'dovecot-keywords'), 'utf8'));
  } catch {
    return [];
  }
}

/** Replaces the keyword table atomically (write aside, rename over). */
export async function writeKeywords(dir: string, keywords: readonly string[]): Promise<void> {
  const path = join(dir, 'dovecot-keywords');
  await writeFile(`${path}.tmp`, formatKeywords(keywords), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
