// The journals of the mail index as both implementations keep them (SQLite index/db.ts,
// PostgreSQL index/postgres.ts; docs/architecture.md §7): the kinds of a mailbox's change
// journal and of an account's journal, their rows as the store sees them, the rule of how far
// back an account's journal reaches, and a mailbox's messages column by column.

import { emailId } from '../ids.ts';
import type { MailboxRow } from './db.ts';

/** Journal entries other than expunges older than this many MODSEQs are pruned (and account
 *  journal entries this many behind the account's last). */
export const JOURNAL_KEEP = 100_000;
/** A prune runs on every this many writes with journal entries (per process). */
export const PRUNE_EVERY = 256;

export const KIND_CODE = { append: 1, flags: 2, expunge: 3 } as const;
export const KIND_NAME = ['', 'append', 'flags', 'expunge'] as const;
/** Account journal kinds: the message kinds above, then the mailbox events. */
export const ACCOUNT_KIND = {
  ...KIND_CODE,
  'mailbox-create': 4,
  'mailbox-rename': 5,
  'mailbox-delete': 6,
  'mailbox-subscribe': 7,
  'mailbox-sort-order': 8,
} as const;
const ACCOUNT_KIND_NAME = [
  ...KIND_NAME,
  'mailbox-create',
  'mailbox-rename',
  'mailbox-delete',
  'mailbox-subscribe',
  'mailbox-sort-order',
];

export type MailboxEvent =
  | 'mailbox-create'
  | 'mailbox-rename'
  | 'mailbox-delete'
  | 'mailbox-subscribe'
  | 'mailbox-sort-order';

export interface JournalRow {
  readonly modseq: number;
  readonly kind: 'append' | 'flags' | 'expunge';
  readonly uid: number;
  /** The message's file base (for the account journal); looked up when absent. */
  readonly base?: string;
}

/** One entry of an account's journal (store/mailboxes.ts AccountChange). */
export interface AccountChangeRow {
  readonly aseq: number;
  readonly kind: keyof typeof ACCOUNT_KIND;
  /** The mailbox's stable id. */
  readonly mailboxId: string;
  /** Message entries: the UID in that mailbox and the email id; 0 and null for mailbox events. */
  readonly uid: number;
  readonly emailId: string | null;
  /** Message entries: the email's thread then (null for entries from before threads). */
  readonly threadId: string | null;
}

/** A mailbox's messages column by column (a structured clone of this from the index worker
 *  costs little on the main thread, unlike 100,000 objects). `bases` and `letters` are joined
 *  with "/", which neither a Maildir base nor flag letters contain. */
export interface MessageColumns {
  readonly count: number;
  readonly uids: Float64Array;
  readonly modseqs: Float64Array;
  readonly sizes: Float64Array;
  readonly dates: Float64Array;
  readonly inNew: Uint8Array;
  readonly bases: string;
  readonly letters: string;
}

type Row = Record<string, unknown>;

/** Message rows (uid, modseq, size, internaldate, in_new, base, letters) as columns. */
export function toColumns(rows: readonly Row[]): MessageColumns {
  const n = rows.length;
  const c = {
    count: n,
    uids: new Float64Array(n),
    modseqs: new Float64Array(n),
    sizes: new Float64Array(n),
    dates: new Float64Array(n),
    inNew: new Uint8Array(n),
    bases: '',
    letters: '',
  };
  const bases: string[] = new Array(n);
  const letters: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i] as Row;
    c.uids[i] = Number(r.uid);
    c.modseqs[i] = Number(r.modseq);
    c.sizes[i] = Number(r.size);
    c.dates[i] = Number(r.internaldate);
    c.inNew[i] = Number(r.in_new);
    bases[i] = String(r.base);
    letters[i] = String(r.letters);
  }
  c.bases = bases.join('/');
  c.letters = letters.join('/');
  return c;
}

/** Where accountChangesSince(aseq) starts reading, given the account's counter row: `from`;
 *  'none' for an account without a journal asked from 0 (no changes); null when the journal
 *  does not reach back that far (pruned, a state from before an index rebuild) or `aseq` is
 *  beyond it: the caller resynchronises (JMAP cannotCalculateChanges). */
export function journalFrom(seq: Record<string, unknown> | undefined, aseq: number): number | 'none' | null {
  if (!seq) return aseq === 0 ? 'none' : null;
  // 0: the state of an account before its first change (its history starts at `start`).
  const from = aseq === 0 ? Number(seq.start) : aseq;
  if (from < Number(seq.start) || from < Number(seq.floor) || from > Number(seq.last)) return null;
  return from;
}

/** An account journal row (aseq, kind, mailbox, uid, base, thread) as the store sees it. */
export function accountChangeRow(c: Row): AccountChangeRow {
  return {
    aseq: Number(c.aseq),
    kind: ACCOUNT_KIND_NAME[Number(c.kind)] as AccountChangeRow['kind'],
    mailboxId: String(c.mailbox),
    uid: Number(c.uid),
    emailId: c.base === '' ? null : emailId(String(c.base)),
    threadId: c.thread ? String(c.thread) : null,
  };
}

/** A mailboxes row as the store sees it. */
export function mailboxRow(r: Row): MailboxRow {
  return {
    id: Number(r.id),
    oid: String(r.oid ?? ''),
    name: String(r.name),
    uidvalidity: Number(r.uidvalidity),
    uidnext: Number(r.uidnext),
    highestmodseq: Number(r.highestmodseq),
    subscribed: Number(r.subscribed) === 1,
    sortOrder: Number(r.sort_order ?? 0),
  };
}

/** A mailbox journal row (modseq, kind, uid). */
export function journalRow(r: Row): JournalRow {
  return { modseq: Number(r.modseq), kind: KIND_NAME[Number(r.kind)] as JournalRow['kind'], uid: Number(r.uid) };
}
