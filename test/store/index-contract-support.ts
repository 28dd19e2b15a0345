// The mail index contract's helpers (test/store/index-contract.ts and its parts): the index
// under test, an account per test, threading fields, a mailbox written as the store writes it.

import type { ThreadHeaders } from '../../src/mime/thread-key.ts';
import type { MailboxRow, MailIndexBackend, MessageColumns } from '../../src/store/index/backend.ts';
import type { MessageRow } from '../../src/store/index/db.ts';

export interface IndexUnderTest {
  readonly index: MailIndexBackend;
  /** The Maildir root the index reads message files under. */
  readonly root: string;
  close(): Promise<void>;
}

let accounts = 0;
/** An account of its own for each test. */
export const newAccount = () => `t${process.pid}n${++accounts}@example.test`;

export const th = (id: string, subject: string, refs: readonly string[] = []): ThreadHeaders => ({
  messageId: id,
  inReplyTo: refs.length > 0 ? [refs.at(-1) as string] : [],
  references: refs,
  subject,
});

/** A mailbox written as the Maildir store writes it: each change with its journal entries
 *  and counters, and the counters it was computed from (expect). */
export class Box {
  row: MailboxRow;
  readonly ix: MailIndexBackend;
  uidnext: number;
  modseq: number;

  constructor(ix: MailIndexBackend, row: MailboxRow) {
    this.ix = ix;
    this.row = row;
    this.uidnext = row.uidnext;
    this.modseq = row.highestmodseq;
  }

  #expect() {
    return { uidnext: this.uidnext, highestmodseq: this.modseq };
  }

  async append(
    base: string,
    o: { letters?: string; size?: number; date?: number; thread?: ThreadHeaders | null; inNew?: boolean } = {},
  ): Promise<number> {
    const expect = this.#expect();
    const uid = this.uidnext++;
    const modseq = ++this.modseq;
    const m: MessageRow = {
      uid,
      base,
      inNew: o.inNew ?? false,
      letters: o.letters ?? '',
      modseq,
      size: o.size ?? 100 + uid,
      internalDate: o.date ?? 1_700_000_000_000 + uid * 1000,
      ...(o.thread === null ? {} : { thread: o.thread ?? th(`${base}@x`, `subject ${base}`) }),
    };
    await this.ix.write(
      this.row.id,
      { insert: [m], journal: [{ modseq, kind: 'append', uid, base }], counters: this.#counters() },
      expect,
    );
    return uid;
  }

  async flags(uid: number, letters: string): Promise<void> {
    const expect = this.#expect();
    const modseq = ++this.modseq;
    await this.ix.write(
      this.row.id,
      {
        update: [{ uid, inNew: false, letters, modseq }],
        journal: [{ modseq, kind: 'flags', uid }],
        counters: this.#counters(),
      },
      expect,
    );
  }

  async expunge(...uids: number[]): Promise<void> {
    const expect = this.#expect();
    const journal = uids.map((uid) => ({ modseq: ++this.modseq, kind: 'expunge' as const, uid }));
    await this.ix.write(this.row.id, { expunge: uids, journal, counters: this.#counters() }, expect);
  }

  #counters() {
    return { uidnext: this.uidnext, highestmodseq: this.modseq };
  }
}

/** The rows of a MessageColumns, for comparisons. */
export function rowsOf(c: MessageColumns) {
  const bases = c.count > 0 ? c.bases.split('/') : [];
  const letters = c.count > 0 ? c.letters.split('/') : [];
  return Array.from({ length: c.count }, (_, i) => ({
    uid: c.uids[i] as number,
    modseq: c.modseqs[i] as number,
    size: c.sizes[i] as number,
    date: c.dates[i] as number,
    inNew: c.inNew[i] === 1,
    base: bases[i] as string,
    letters: letters[i] as string,
  }));
}

/** Runs a test on a fresh index of the implementation, in an account of its own. */
export type WithIndex = (
  fn: (ix: MailIndexBackend, account: string, u: IndexUnderTest) => Promise<void>,
) => () => Promise<void>;
