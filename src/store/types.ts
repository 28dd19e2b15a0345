// The mail store seam. Protocol code (SMTP now, IMAP/JMAP/Sieve later) reaches mail only through
// these interfaces; the Maildir implementation lives in store/maildir/.
//
// Durability contract of deliver() (design.md convention 5), stated once here:
//   for every target: write tmp/ file (prefix + message) -> fsync file -> close
//   then: rename each into new/ -> fsync each new/ directory -> resolve.
// deliver() resolves only when every copy is durable. If any step fails it removes every copy it
// made (tmp and already-renamed ones), so a failed delivery leaves nothing visible and the SMTP
// layer can answer 451 and let the sender retry without duplicates.

import type { Readable } from 'node:stream';
import type { AccountId } from '../core/ids.ts';

/** A received message held until it is delivered: in memory when small, in a spool file when
 *  large. The bytes are exactly those received (CRLF line endings, dot-unstuffed). */
export interface SpooledMessage {
  readonly size: number;
  /** A fresh stream over the whole message; may be called any number of times. */
  open(): Readable;
  /** The whole message as buffers when it is held in memory (null when it is in a file): lets
   *  a writer make one writev instead of iterating a stream. The buffers must not be changed. */
  buffers?(): readonly Buffer[] | null;
  /** Frees memory / removes the spool file. Idempotent. */
  dispose(): Promise<void>;
}

export interface DeliveryTarget {
  readonly account: AccountId;
  /** IMAP-style mailbox name: 'INBOX' (default) or a folder such as 'Junk'. */
  readonly mailbox?: string;
  /** Header lines written before the message for this copy (Return-Path, Delivered-To,
   *  Received ...), each ending in CRLF. May be empty. */
  readonly prefix: Buffer;
  /** IMAP flags the copy is delivered with (Sieve imap4flags, RFC 5232; fileinto :flags): system
   *  flags and keywords; \Recent, invalid keywords and those past the limits are dropped
   *  (store/names.ts deliveryFlags). The message shows them to IMAP at once, like APPEND's. */
  readonly flags?: readonly string[];
  /** Whether a missing folder is created (default true, as for Junk). With false the delivery
   *  fails with NOT_FOUND before anything is written (Sieve fileinto without :create, RFC 5490
   *  §3.2); ask mailboxExists() first to choose another mailbox. */
  readonly create?: boolean;
}

export interface DeliveredCopy {
  readonly account: AccountId;
  readonly mailbox: string;
  /** Path of the delivered file, for logs and tests. Never shown to remote clients. */
  readonly path: string;
  readonly size: number;
}

/** Whether a mailbox exists, without opening the index: a stat where the mailbox would be.
 *  Names as IMAP has them (INBOX in any case, "." separates levels); false for a missing
 *  account and for a name that cannot be a mailbox. The Maildir store and the stores built on
 *  MessageStore have it; the SMTP threads' ThreadStore (smtp/threads/remote.ts) would forward it
 *  to its own delivery-only Maildir store (a stat, no call to the main thread). */
export interface MailboxLookup {
  mailboxExists(account: AccountId, name: string): Promise<boolean>;
}

export interface MailStore {
  /** Creates the account's Maildir with INBOX, Sent, Drafts, Trash and Junk. Idempotent. */
  createAccount(id: AccountId): Promise<void>;
  /** Removes the account's whole Maildir (used by `user del --purge`). */
  purgeAccount(id: AccountId): Promise<void>;
  deliver(targets: readonly DeliveryTarget[], msg: SpooledMessage): Promise<readonly DeliveredCopy[]>;
  /** Bytes the account's messages use (quotas). */
  usage(account: AccountId): Promise<number>;
  /** Receives a message being streamed in (SMTP DATA) into a SpooledMessage. */
  createSpool(): SpoolWriter;
  close(): Promise<void>;
}

export interface SpoolWriter {
  write(chunk: Buffer): Promise<void>;
  /** Finishes the spool; the writer must not be used afterwards. */
  finish(): Promise<SpooledMessage>;
  /** Discards everything written so far (client went away, message rejected). */
  abort(): Promise<void>;
}
