// A message as a Maildir mailbox tracks it in memory (maildir/mailbox.ts), and its forms for
// the index (a row, a journal entry) and for protocols (MessageMeta).

import { TimeSlice } from '../../core/slice.ts';
import type { JournalRow, MessageColumns, MessageRow } from '../index/db.ts';
import type { MessageMeta } from '../mailboxes.ts';
import { lettersToFlags } from './flags.ts';

/** The index row (mutable in memory) plus the decoded flags. */
export type Entry = { -readonly [K in keyof MessageRow]: MessageRow[K] } & { flags: readonly string[] };

export function meta(e: Entry): MessageMeta {
  return { uid: e.uid, flags: e.flags, modseq: e.modseq, size: e.size, internalDate: new Date(e.internalDate) };
}

export function row(e: Entry): MessageRow {
  return {
    uid: e.uid,
    base: e.base,
    inNew: e.inNew,
    letters: e.letters,
    modseq: e.modseq,
    size: e.size,
    internalDate: e.internalDate,
  };
}

/** Journal entries (index/db.ts `changes`): a message added, its flags changed, expunged. */
export function appended(e: Entry): JournalRow {
  return { modseq: e.modseq, kind: 'append', uid: e.uid, base: e.base };
}

export function flagsChanged(e: Entry): JournalRow {
  return { modseq: e.modseq, kind: 'flags', uid: e.uid, base: e.base };
}

export function expungeEntries(uids: readonly number[], modseq: number): JournalRow[] {
  return uids.map((uid) => ({ modseq, kind: 'expunge', uid }));
}

/** A mailbox's entries from the index's columns (index/db.ts MessageColumns), giving way to the
 *  event loop every time slice (100,000 messages take a while). */
export async function entriesOf(c: MessageColumns, keywords: readonly string[]): Promise<Entry[]> {
  const bases = c.count > 0 ? c.bases.split('/') : [];
  const letters = c.count > 0 ? c.letters.split('/') : [];
  const entries: Entry[] = new Array(c.count);
  const slice = new TimeSlice();
  for (let i = 0; i < c.count; i++) {
    if (slice.due()) await slice.pause();
    const l = letters[i] as string;
    entries[i] = {
      uid: c.uids[i] as number,
      base: bases[i] as string,
      inNew: c.inNew[i] === 1,
      letters: l,
      flags: lettersToFlags(l, keywords),
      modseq: c.modseqs[i] as number,
      size: c.sizes[i] as number,
      internalDate: c.dates[i] as number,
    };
  }
  return entries;
}
