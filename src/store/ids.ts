// Stable ids of stored things as JMAP shows them (RFC 8620 §1.2: 1-255 characters of
// [A-Za-z0-9_-], opaque). Decided by the lead's design for issue #17 (docs/architecture.md §7):
// - an Email's id derives from its Maildir file's unique base (the part before ":2,"), which a
//   COPY (hard link) and a MOVE (rename) keep, so one message in several mailboxes is one Email;
// - a Mailbox's id is made at creation and kept in the index row and in the folder
//   (`arcline-id`), so it survives renames, restarts and the loss of the index.

import { createHash, randomBytes } from 'node:crypto';

/** "M" + the first 24 characters of base64url(sha256(base)): 144 bits, RFC 8620 §1.2 syntax. */
export function emailId(base: string): string {
  return `M${createHash('sha256').update(base).digest('base64url').slice(0, 24)}`;
}

/** A new mailbox id: "F" + 16 base64url characters (96 random bits). */
export function newMailboxId(): string {
  return `F${randomBytes(12).toString('base64url')}`;
}

/** Whether a string read back from a folder's `arcline-id` file is a mailbox id we could have made. */
export function isMailboxId(s: string): boolean {
  return /^F[A-Za-z0-9_-]{16}$/.test(s);
}
