// The mailbox seam: what IMAP (and later JMAP and Sieve's fileinto) may know of stored mail.
// Protocol code reaches mailboxes, messages, bodies and changes only through these interfaces;
// it knows no file, path or SQL (docs/architecture.md §2, §7). The Maildir implementation is
// store/maildir/ (MaildirAccounts, MaildirMailbox); test/store/contract.ts is the contract every
// implementation passes (a PostgreSQL one comes with issue #18).
//
// Changes and MODSEQ (RFC 7162 §3.1, docs/architecture.md §7): every append, flag change and
// expunge of a mailbox is an entry of its change journal with a MODSEQ greater than every earlier
// one, committed in the same transaction as the change itself. A MailboxChange event is a batch
// of such committed entries, handed to the subscribers of the mailbox in journal order, after the
// commit; changesSince() reads the same entries back from the journal.

import type { Readable } from 'node:stream';
import type { AccountId } from '../core/ids.ts';
import type { MailboxLookup, MailStore, SpooledMessage } from './types.ts';

export interface MessageMeta {
  readonly uid: number;
  readonly flags: readonly string[];
  readonly modseq: number;
  readonly size: number;
  readonly internalDate: Date;
}

export type MailboxChange =
  | {
      readonly kind: 'exists';
      readonly messages: readonly MessageMeta[];
      /** The one subscriber these messages are \Recent for (RFC 3501 §2.3.2), or null. */
      readonly recentTo: ChangeListener | null;
    }
  | { readonly kind: 'expunge'; readonly uids: readonly number[]; readonly modseq: number }
  | { readonly kind: 'flags'; readonly messages: readonly MessageMeta[] };

export type ChangeListener = (change: MailboxChange, origin: object | null) => void;

export interface SubscribeOptions {
  /** A read-write session: new messages may be \Recent for it (RFC 3501 §2.3.2). */
  readonly claimsRecent?: boolean;
  /** The object the subscriber passes as `origin` of its own changes. */
  readonly self?: object;
}

export interface MailboxStatus {
  readonly uidValidity: number;
  readonly uidNext: number;
  readonly highestModseq: number;
  readonly messages: readonly MessageMeta[];
  /** Every keyword the mailbox has defined, in order; the list only grows (as Dovecot's does),
   *  so what a client was told in FLAGS stays true. */
  readonly keywords: readonly string[];
}

/** One entry of a mailbox's change journal. */
export interface JournalEntry {
  readonly modseq: number;
  readonly kind: 'append' | 'flags' | 'expunge';
  readonly uid: number;
}

/** One entry of an account's journal (docs/architecture.md §7): a message appended to a mailbox,
 *  its flags changed or it expunged (every copy is a message of its mailbox: an Email is in
 *  the account while one of its copies is), or a mailbox created, renamed, deleted (after an
 *  expunge entry for each of its messages) or its subscription changed. Numbered by one
 *  counter per account (`aseq`, JMAP's state), strictly increasing; a sortOrder change is a
 *  mailbox entry too. Mailbox entries also come
 *  for a subscription to a name no mailbox has (RFC 9051 §6.3.7: it keeps an index entry),
 *  whose id list() does not show: callers skip ids they do not know. */
export interface AccountChange {
  readonly aseq: number;
  readonly kind:
    | 'append'
    | 'flags'
    | 'expunge'
    | 'mailbox-create'
    | 'mailbox-rename'
    | 'mailbox-delete'
    | 'mailbox-subscribe'
    | 'mailbox-sort-order';
  /** The mailbox's stable id (MailboxListEntry.id). */
  readonly mailboxId: string;
  /** For message entries the UID in that mailbox and the Email id; 0 and null otherwise. */
  readonly uid: number;
  readonly emailId: string | null;
  /** For message entries the email's Thread id (null in entries from before threads). */
  readonly threadId: string | null;
}

/** Where an email is (Mailboxes.locate): every copy with its mailbox, UID and flags. */
export interface LocatedEmail {
  readonly emailId: string;
  /** Its thread (RFC 8621 §3): given with its first copy, never changed (see threads()). */
  readonly threadId: string;
  readonly size: number;
  readonly internalDate: Date;
  readonly copies: readonly {
    readonly mailboxId: string;
    readonly mailbox: string;
    readonly uid: number;
    readonly flags: readonly string[];
  }[];
}

/** A text condition of a search (JMAP Email/query, RFC 8621 §4.4.1): `text` looks in every
 *  field, the others in one (from, to, cc, bcc: names and addresses; body: the text of the
 *  text/* parts). Matching: docs/jmap-email.md "Search". */
export type TextField = 'text' | 'from' | 'to' | 'cc' | 'bcc' | 'subject' | 'body';
export interface TextCondition {
  readonly field: TextField;
  readonly value: string;
}

/** What the full-text index answers (Mailboxes.searchEmails): the emails it has indexed that
 *  match (some may be gone since: callers locate them), newest first (ties by id) with their
 *  internal dates (ms), and the emails appended since its position, not indexed yet, which the
 *  caller must look at itself for a complete answer. Emails of `ids` gone since are in `gone`
 *  (but for those the caller locates anyway, nothing else need be checked). */
export interface TextSearchResult {
  readonly ids: readonly string[];
  readonly receivedAt: readonly number[];
  readonly unindexed: readonly string[];
  /** Emails among `ids` whose last copy went since the index's position. */
  readonly gone: readonly string[];
}

/** Parsed data kept with a message (envelope, MIME structure, search fields), filled on first use. */
export type CacheField = 'envelope' | 'structure' | 'search';

/** A stored message opened for reading. Stays readable whatever happens to the message meanwhile
 *  (an expunge by another session); close() releases it. */
export interface MessageBody {
  readonly size: number;
  /** Reads up to `length` bytes at byte `position` of the message into `buffer` at `offset`. */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** The bytes [start, end) of the message as a stream; the body stays open afterwards. */
  stream(start: number, end: number): Readable;
  close(): Promise<void>;
}

/** What parsers need of a message: reads at offsets (a MessageBody, or a file handle in tests). */
export type ByteReader = Pick<MessageBody, 'read'>;

export interface MailboxListEntry {
  readonly name: string;
  /** The mailbox's stable id (JMAP Mailbox id, RFC 8621 §2): kept through renames, restarts and
   *  index rebuilds; a new one for a mailbox deleted and created again. Always there with
   *  list(account, { ids: true }), except for a \Noselect parent that is no mailbox and for a
   *  subscription to a name that does not exist. */
  readonly id?: string;
  /** JMAP sortOrder (RFC 8621 §2, an UnsignedInt; 0 unless set), where `id` is. Kept through
   *  renames, restarts and index rebuilds. */
  readonly sortOrder?: number;
  /** RFC 6154 attribute such as "\\Sent", or null. */
  readonly specialUse: string | null;
  readonly subscribed: boolean;
  /** A parent that exists only because it has children (\Noselect, RFC 9051 §7.3.1). */
  readonly noselect: boolean;
  readonly hasChildren: boolean;
  /** A subscribed name no mailbox has (RFC 9051 §6.3.7: subscriptions outlive mailboxes;
   *  RFC 5258 §3.4 \NonExistent). Only LIST (SUBSCRIBED) and LSUB show it. */
  readonly nonexistent?: boolean;
}

/** One mailbox, shared by every session of the process that has it open. Writes run one at a
 *  time per mailbox; each resolves after its journal entries are committed and broadcast. */
export interface Mailbox {
  readonly name: string;
  /** Brings the mailbox up to date with what is stored (including other programs' changes) and
   *  returns its status. `claimRecent` (SELECT): the caller takes the \Recent messages no session
   *  has (RFC 3501 §2.3.2). `subscribe`: the listener is subscribed in the same step, so it
   *  misses no change after this status and sees none before it. */
  sync(opts?: {
    claimRecent?: boolean;
    origin?: object;
    subscribe?: { readonly listener: ChangeListener } & SubscribeOptions;
  }): Promise<MailboxStatus & { recent: readonly number[] }>;
  /** Brings the mailbox up to date; changes reach the subscribers as events. */
  refresh(opts?: { origin?: object }): Promise<void>;
  subscribe(listener: ChangeListener, opts?: SubscribeOptions): () => void;
  unsubscribe(listener: ChangeListener): void;
  readonly subscribers: number;
  /** A subscriber has told its client about these expunges: their bodies may go. */
  acknowledgeExpunges(listener: ChangeListener, uids: readonly number[]): void;
  /** \Recent messages no session has taken (STATUS RECENT). */
  readonly unclaimed: number;
  /** The current metadata of a message, or null when it is not (or no longer) in the mailbox. */
  meta(uid: number): MessageMeta | null;
  /** Opens a message's bytes; null when it is gone. Works for an expunged message until every
   *  subscriber has acknowledged the expunge. */
  openMessage(uid: number): Promise<MessageBody | null>;
  /** Flag changes (RFC 9051 §6.4.6) in one transaction: the messages whose flags changed (each
   *  with its new MODSEQ), and the UIDs refused by UNCHANGEDSINCE (RFC 7162 §3.1.3). */
  storeFlags(
    uids: readonly number[],
    mode: 'set' | 'add' | 'remove',
    flags: readonly string[],
    opts?: { unchangedSince?: number | null; origin?: object },
  ): Promise<{ changed: MessageMeta[]; modifiedRefused: number[] }>;
  /** Removes messages; with `onlyDeleted` only those that have \Deleted now. Returns their UIDs. */
  expunge(uids: readonly number[], origin?: object | null, onlyDeleted?: boolean): Promise<number[]>;
  /** Adds a message durably (APPEND, COPY, MOVE); returns its UID (RFC 4315). */
  append(msg: SpooledMessage, flags: readonly string[], date: Date | null, origin?: object | null): Promise<number>;
  /** COPY / MOVE (RFC 9051 §6.4.7, RFC 6851) into `target` (a mailbox of the same store; may be
   *  this one), durable as append, each copy keeping the message's identity (the same Email for
   *  JMAP) where the target does not have it yet. MOVE expunges the sources (their expunge event
   *  carries `origin`). Returns [source UID, target UID] pairs in order (RFC 4315 COPYUID);
   *  UIDs no longer in the mailbox are skipped. */
  copyTo(
    uids: readonly number[],
    target: Mailbox,
    opts?: { move?: boolean; origin?: object | null },
  ): Promise<[source: number, target: number][]>;
  /** The JMAP Email ids of these messages (store/ids.ts emailId: the same for every copy made by
   *  copyTo, stable across restarts and index rebuilds); messages not here are not in the map. */
  emailIds(uids: readonly number[]): Map<number, string>;
  /** Parsed data cached for these messages (absent ones are not in the map). */
  cached(uids: readonly number[], field: CacheField): Promise<Map<number, string>>;
  /** Stores parsed data, in one transaction; entries of messages no longer there are dropped.
   *  cached() answers with them at once: callers need not wait for the commit. */
  setCached(entries: readonly (readonly [uid: number, field: CacheField, value: string])[]): Promise<void>;
  /** UIDs expunged after `modseq` (QRESYNC VANISHED, RFC 7162 §3.2.10). */
  vanishedSince(modseq: number): Promise<number[]>;
  /** Journal entries after `modseq` in MODSEQ order, or null when the journal no longer reaches
   *  back that far (the caller must then resynchronise from the full state). */
  changesSince(modseq: number): Promise<JournalEntry[] | null>;
}

/** The mailboxes of the accounts. Names are IMAP names (UTF-8, "." as hierarchy separator). */
export interface Mailboxes {
  /** Every mailbox of the account, INBOX first, with RFC 3501/6154/5258 attributes. `ids`: every
   *  mailbox with its id (JMAP); without it, ids may be missing for mailboxes not used yet. */
  list(account: AccountId, opts?: { ids?: boolean }): Promise<MailboxListEntry[]>;
  exists(account: AccountId, name: string): Promise<boolean>;
  /** The shared mailbox; NOT_FOUND when it does not exist. Pair with release(). */
  open(account: AccountId, name: string): Promise<Mailbox>;
  /** The caller no longer uses the mailbox (it may stay loaded a while). */
  release(account: AccountId, mailbox: Mailbox): void;
  /** Creates the mailbox and its missing parents, all or nothing (RFC 9051 §6.3.4). */
  create(account: AccountId, name: string, specialUse?: readonly string[]): Promise<void>;
  delete(account: AccountId, name: string): Promise<void>;
  /** Renames the mailbox and its children, all or nothing (RFC 9051 §6.3.6; not INBOX). */
  rename(account: AccountId, from: string, to: string): Promise<void>;
  setSubscribed(account: AccountId, name: string, on: boolean): Promise<void>;
  /** Sets the JMAP sortOrder of a mailbox (an account journal entry 'mailbox-sort-order' when
   *  it changes). NOT_FOUND when the mailbox does not exist, INVALID for no UnsignedInt. */
  setSortOrder(account: AccountId, name: string, sortOrder: number): Promise<void>;
  /** The account's journal position (JMAP state): grows with every change of every mailbox of
   *  the account; 0 before the first. */
  accountState(account: AccountId): Promise<number>;
  /** At most `max` account journal entries after `aseq`, in order; null when the journal no
   *  longer reaches back that far (pruned, or from before an index rebuild) or `aseq` is not a
   *  state it gave: resynchronise from the full state (JMAP cannotCalculateChanges). */
  accountChangesSince(account: AccountId, aseq: number, max: number): Promise<AccountChange[] | null>;
  /** Calls `listener` (synchronously, after the commit) whenever the account's journal may
   *  have advanced: changes of any session, JMAP, deliveries of any thread. Spurious calls may
   *  happen (compare accountState). While an account is watched, deliveries into mailboxes no
   *  session has open are indexed at once. Returns the function that stops it. */
  watchAccount(account: AccountId, listener: () => void): () => void;
  /** Makes the account's journal include every delivery made so far (a delivery into a mailbox
   *  no session has open is otherwise indexed when the mailbox is next opened). */
  indexDeliveries(account: AccountId): Promise<void>;
  /** The account's emails (one per email, however many mailboxes have a copy) or, with
   *  `mailboxId`, that mailbox's messages, sorted by internal date or size (ties in a fixed
   *  order), from `position`: the Email ids of at most `limit` and the total (JMAP Email/query,
   *  RFC 8621 §4.4). Backed by indexes: a page costs the same in a 100,000-message account. */
  accountMessages(
    account: AccountId,
    q: {
      sort: 'receivedAt' | 'size';
      descending: boolean;
      mailboxId?: string;
      /** Only the first email of each thread in this order; `total` counts threads (JMAP
       *  collapseThreads, RFC 8621 §4.4.3). A scan of the account's (mailbox's) emails. */
      collapseThreads?: boolean;
      position: number;
      limit: number;
    },
  ): Promise<{ ids: string[]; total: number }>;
  /** The emails of each thread, oldest first (internal date, ties in a fixed order); threads
   *  with no email (unknown, or whose last email is gone) are left out. An email's thread is
   *  given when its first copy is stored, from its Message-ID, In-Reply-To, References and
   *  base subject (docs/jmap-email.md "Threads"), and never changes; a copy or a move keeps
   *  it, and it survives restarts and index rebuilds that index messages in the same order. */
  threads(account: AccountId, threadIds: readonly string[]): Promise<{ threadId: string; emailIds: string[] }[]>;
  /** How many threads have an email in the mailbox (its id), and how many have one there
   *  without \Seen (JMAP Mailbox totalThreads, unreadThreads, RFC 8621 §2). As of the
   *  mailbox's last sync. */
  mailboxThreads(account: AccountId, mailboxId: string): Promise<{ total: number; unread: number }>;
  /** Where each email is (JMAP Email/get mailboxIds, keywords, size, receivedAt); ids of emails
   *  not (or no longer) in the account are left out. */
  locate(account: AccountId, emailIds: readonly string[]): Promise<LocatedEmail[]>;
  /** The emails matching every one of `conditions` by the full-text index, kept up to date in
   *  the background from the account journal (after indexDeliveries), with the tail it has not
   *  indexed yet. null when the index cannot answer (none configured, the account not indexed
   *  yet, a condition with too many words, a tail longer than LIMITS.search.journalPage): the
   *  caller reads the messages itself. */
  searchEmails(account: AccountId, conditions: readonly TextCondition[]): Promise<TextSearchResult | null>;
}

/** The whole store as protocols see it: delivery (MailStore) and the mailboxes. */
export interface MessageStore extends MailStore, MailboxLookup {
  readonly accounts: Mailboxes;
  /** Storage use per account (quotas); invalidate() after a change outside deliveries. */
  readonly quota: { invalidate(account: AccountId): void };
}
