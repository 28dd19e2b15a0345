// What the mail store contract (test/store/contract.ts) is built from: the fixture every store
// implementation provides, and helpers that reach the store only through its interfaces
// (store/types.ts, store/mailboxes.ts): no file, path or SQL.

import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { type ErrorCode, isArclineError } from '../../src/core/errors.ts';
import type { AccountId } from '../../src/core/ids.ts';
import type {
  ChangeListener,
  JournalEntry,
  Mailbox,
  MailboxChange,
  MailboxListEntry,
  MessageBody,
  MessageStore,
} from '../../src/store/mailboxes.ts';
import type { DeliveredCopy, SpooledMessage } from '../../src/store/types.ts';

/** One store of the implementation under test, on fresh, empty storage. */
export interface StoreUnderTest {
  readonly store: MessageStore;
  /** An account id the implementation accepts; the suite creates the account itself. */
  readonly account: AccountId;
  /** A second store on the same data, opened after the suite closed the previous one. */
  reopen(): Promise<MessageStore>;
  /** Loses whatever the implementation can rebuild from its primary data (Maildir: the index,
   *  mailindex.db), with the store closed; absent where nothing can be lost that way. */
  loseIndex?(): Promise<void>;
  /** Loses the full-text search index (Maildir: mailsearch.db), with the store closed. */
  loseSearchIndex?(): Promise<void>;
  /** Removes the data; the suite has closed every store it opened before calling it. */
  cleanup(): Promise<void>;
}

export type MakeStore = () => Promise<StoreUnderTest>;

/** A store with its account, for one test: `store` follows reopen(). */
export class Ctx {
  readonly #fixture: StoreUnderTest;
  store: MessageStore;
  readonly account: AccountId;

  private constructor(fixture: StoreUnderTest) {
    this.#fixture = fixture;
    this.store = fixture.store;
    this.account = fixture.account;
  }

  static async make(make: MakeStore): Promise<Ctx> {
    const ctx = new Ctx(await make());
    await ctx.store.createAccount(ctx.account);
    return ctx;
  }

  get boxes() {
    return this.store.accounts;
  }

  open(name: string): Promise<Mailbox> {
    return this.store.accounts.open(this.account, name);
  }

  async list(): Promise<Map<string, MailboxListEntry>> {
    return new Map((await this.store.accounts.list(this.account)).map((e) => [e.name, e]));
  }

  /** Closes the store and opens it again on the same data; with `loseIndex` (`loseSearchIndex`),
   *  what the store can rebuild (its search index) is lost in between (false when the
   *  implementation has nothing to lose). */
  async reopen(opts: { loseIndex?: boolean; loseSearchIndex?: boolean } = {}): Promise<boolean> {
    await this.store.close();
    let lose = opts.loseIndex === true && this.#fixture.loseIndex !== undefined;
    if (lose) await this.#fixture.loseIndex?.();
    if (opts.loseSearchIndex && this.#fixture.loseSearchIndex) {
      await this.#fixture.loseSearchIndex();
      lose = true;
    }
    this.store = await this.#fixture.reopen();
    return lose;
  }

  async cleanup(): Promise<void> {
    await this.store.close();
    await this.#fixture.cleanup();
  }
}

/** Runs `fn` with a fresh store, always cleaning up. */
export async function withStore(make: MakeStore, fn: (ctx: Ctx) => Promise<void>): Promise<void> {
  const ctx = await Ctx.make(make);
  try {
    await fn(ctx);
  } finally {
    await ctx.cleanup();
  }
}

export async function spool(store: MessageStore, bytes: string | Buffer): Promise<SpooledMessage> {
  const w = store.createSpool();
  await w.write(typeof bytes === 'string' ? Buffer.from(bytes) : bytes);
  return w.finish();
}

/** Delivers one message to a mailbox of the context's account (SMTP's path: MailStore.deliver). */
export async function deliver(
  ctx: Ctx,
  bytes: string | Buffer,
  opts: { mailbox?: string; prefix?: string; flags?: readonly string[]; create?: boolean } = {},
): Promise<DeliveredCopy> {
  const msg = await spool(ctx.store, bytes);
  try {
    const [copy] = await ctx.store.deliver(
      [
        {
          account: ctx.account,
          mailbox: opts.mailbox ?? 'INBOX',
          prefix: Buffer.from(opts.prefix ?? ''),
          ...(opts.flags ? { flags: opts.flags } : {}),
          ...(opts.create !== undefined ? { create: opts.create } : {}),
        },
      ],
      msg,
    );
    assert.ok(copy);
    return copy;
  } finally {
    await msg.dispose();
  }
}

/** Appends one message (IMAP's path: Mailbox.append); returns its UID. */
export async function append(
  ctx: Ctx,
  box: Mailbox,
  bytes: string | Buffer,
  flags: readonly string[] = [],
  date: Date | null = null,
  origin: object | null = null,
): Promise<number> {
  const msg = await spool(ctx.store, bytes);
  try {
    return await box.append(msg, flags, date, origin);
  } finally {
    await msg.dispose();
  }
}

export const text = (n: number | string) => `From: a@example.test\r\nSubject: message ${n}\r\n\r\nbody ${n}\r\n`;

export async function rejectsWith(p: Promise<unknown>, code: ErrorCode, what = ''): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isArclineError(e, code), `${what}: expected ${code}, got ${String(e)}`);
    return true;
  });
}

/** Waits until `cond` holds (real timers, bounded): for what an implementation may do in the
 *  background, never as a pause before an assertion. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The bytes [start, end) of a message through stream(). */
export function streamed(body: MessageBody, start: number, end: number): Promise<Buffer> {
  return buffer(body.stream(start, end));
}

/** A message's whole bytes through openMessage(), or null when it is gone. */
export async function contentOf(box: Mailbox, uid: number): Promise<Buffer | null> {
  const body = await box.openMessage(uid);
  if (!body) return null;
  try {
    return await streamed(body, 0, body.size);
  } finally {
    await body.close();
  }
}

export const sorted = (flags: readonly string[]) => [...flags].sort();
export const ascending = (uids: readonly number[]) => [...uids].sort((a, b) => a - b);

/** The journal entries a change event stands for. */
export function entriesOf(change: MailboxChange): JournalEntry[] {
  switch (change.kind) {
    case 'exists':
      return change.messages.map((m) => ({ modseq: m.modseq, kind: 'append', uid: m.uid }));
    case 'flags':
      return change.messages.map((m) => ({ modseq: m.modseq, kind: 'flags', uid: m.uid }));
    case 'expunge':
      return change.uids.map((uid) => ({ modseq: change.modseq, kind: 'expunge', uid }));
  }
}

/** Journal order: MODSEQ, then UID (one expunge removes several UIDs at one MODSEQ). */
export function journalOrder(entries: readonly JournalEntry[]): JournalEntry[] {
  return [...entries].sort((a, b) => a.modseq - b.modseq || a.uid - b.uid);
}

/** The MODSEQs of one event, in the order the event lists them. */
export function modseqsOf(change: MailboxChange): number[] {
  return change.kind === 'expunge' ? [change.modseq] : change.messages.map((m) => m.modseq);
}

/** A subscriber that records every event with its origin. */
export class Recorder {
  readonly changes: { change: MailboxChange; origin: object | null }[] = [];
  readonly listener: ChangeListener = (change, origin) => {
    this.changes.push({ change, origin });
  };

  /** Asserts that MODSEQs never went backwards: strictly increasing within an event and from one
   *  event to the next (an expunge event has one MODSEQ for all its UIDs). */
  assertOrdered(): void {
    let last = 0;
    for (const { change } of this.changes) {
      for (const m of modseqsOf(change)) {
        assert.ok(m > last, `event MODSEQ ${m} after ${last} (${change.kind})`);
        last = m;
      }
      const n = change.kind === 'expunge' ? change.uids.length : change.messages.length;
      assert.ok(n > 0, `an empty ${change.kind} event`);
    }
  }

  /** The journal entries the events after `after` stand for, in journal order (after checking
   *  the events' order). */
  entries(after = 0): JournalEntry[] {
    this.assertOrdered();
    return journalOrder(this.changes.flatMap((c) => entriesOf(c.change)).filter((e) => e.modseq > after));
  }

  of<K extends MailboxChange['kind']>(kind: K): Extract<MailboxChange, { kind: K }>[] {
    return this.changes.map((c) => c.change).filter((c): c is Extract<MailboxChange, { kind: K }> => c.kind === kind);
  }
}

/** A deterministic pseudo-random sequence (tests must be reproducible). */
export function prng(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}
