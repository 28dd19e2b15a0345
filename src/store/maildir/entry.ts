// A message as a Maildir mailbox tracks it in memory (maildir/mailbox.ts), and its forms for
// the index (a row, a journal entry) and for protocols (MessageMeta).

import type { JournalRow, MessageRow } from '../index/db.ts';
import type { MessageMeta } from '../mailboxes.ts';

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
  return { modseq: e.modseq, kind: 'append', uid: e.uid };
}

export function flagsChanged(e: Entry): JournalRow {
  return { modseq: e.modseq, kind: 'flags', uid: e.uid };
}

export function expungeEntries(uids: readonly number[], modseq: number): JournalRow[] {
  return uids.map((uid) => ({ modseq, kind: 'expunge', uid }));
}
