// What the Email methods (RFC 8621 §4) need of the store, through its interfaces only
// (store/mailboxes.ts): keywords <-> IMAP flags (§4.1.1), the ids derived from an Email id
// (threadId, blobIds), reading a message through any of its copies, and the blob resolver
// that serves an Email's blob and its parts' blobs (§4.1.4) to downloads and Blob/copy.
//
// State strings are the Mailbox part's (mailboxes.ts stateOf: the account journal's position,
// with every delivery made so far in it), as is the mail capability (MAIL_CAPABILITY).
// Threads are the store's (LocatedEmail.threadId; docs/jmap-email.md "Threads"). Blob ids: "E"
// + the Email id's 24 characters (the whole message) and "P" + those 24 + the part id with "_"
// for "." (a leaf part, transfer-decoded); the 24 characters are fixed, so the part id is what
// follows.

import { Readable } from 'node:stream';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { bufferReader } from '../../mime/reader.ts';
import { parseStructure } from '../../mime/structure.ts';
import { openLocated } from '../../store/located.ts';
import type { LocatedEmail, Mailboxes, MessageBody } from '../../store/mailboxes.ts';
import type { BlobContent, BlobStore } from '../blob-store.ts';
import { parseEmail, partBytes } from '../mail/email.ts';

const EMAIL_ID = /^M[A-Za-z0-9_-]{24}$/;

export const emailBlobId = (emailId: string): string => `E${emailId.slice(1)}`;
export const partBlobId = (emailId: string, partId: string): string =>
  `P${emailId.slice(1)}${partId.replaceAll('.', '_')}`;

/** The Email (and part id, for a part's blob) a blob id names, or null when it names none. */
export function parseBlobId(blobId: string): { emailId: string; partId: string | null } | null {
  if (blobId.length < 25 || (blobId[0] !== 'E' && blobId[0] !== 'P')) return null;
  const emailId = `M${blobId.slice(1, 25)}`;
  if (!EMAIL_ID.test(emailId)) return null;
  if (blobId[0] === 'E') return blobId.length === 25 ? { emailId, partId: null } : null;
  const partId = blobId.slice(25).replaceAll('_', '.');
  return PART_ID.test(partId) ? { emailId, partId } : null;
}

/** The blob of part `partId` of a message held in another blob (Email/parse, §4.9): "Q", the
 *  outer blob id's length in two digits, the outer blob id, the part id with "_" for ".". */
export const innerBlobId = (outer: string, partId: string): string =>
  `Q${String(outer.length).padStart(2, '0')}${outer}${partId.replaceAll('.', '_')}`;

function parseInnerBlobId(blobId: string): { outer: string; partId: string } | null {
  if (blobId[0] !== 'Q') return null;
  const n = Number(blobId.slice(1, 3));
  if (!Number.isInteger(n) || n < 1 || blobId.length <= 3 + n) return null;
  const partId = blobId.slice(3 + n).replaceAll('_', '.');
  return PART_ID.test(partId) ? { outer: blobId.slice(3, 3 + n), partId } : null;
}

const PART_ID = /^[1-9]\d{0,5}(?:\.[1-9]\d{0,5}){0,50}$/;

/** The resolver of the parts of messages held in blobs (an upload given to Email/parse). */
export function innerBlobResolver(blobs: BlobStore) {
  return async (accountId: string, blobId: string, account?: AccountId): Promise<BlobContent | null> => {
    const named = parseInnerBlobId(blobId);
    if (!named) return null;
    const outer = await blobs.open(accountId, named.outer, account);
    if (!outer || outer.size > LIMITS.jmapMail.maxBuiltMessageBytes) return null;
    const chunks: Buffer[] = [];
    for await (const c of outer.stream()) chunks.push(c as Buffer);
    const reader = bufferReader(Buffer.concat(chunks));
    const bytes = await partBytes(reader, await parseStructure(reader, outer.size), named.partId, outer.size);
    return bytes ? { size: bytes.length, stream: () => Readable.from([bytes]) } : null;
  };
}

export const isEmailId = (id: string): boolean => EMAIL_ID.test(id);

// RFC 8621 §4.1.1: the IMAP system flags with a JMAP keyword; \Deleted and \Recent have none
// (a message marked \Deleted is still there for JMAP; its flag is hidden).
const TO_KEYWORD: Readonly<Record<string, string>> = {
  '\\seen': '$seen',
  '\\flagged': '$flagged',
  '\\answered': '$answered',
  '\\draft': '$draft',
};
const TO_FLAG: Readonly<Record<string, string>> = {
  $seen: '\\Seen',
  $flagged: '\\Flagged',
  $answered: '\\Answered',
  $draft: '\\Draft',
};

/** The keywords of an Email: the flags of all its copies united (§4.1.1), lower-cased. */
export function keywordsOf(flagSets: readonly (readonly string[])[]): Record<string, true> {
  const out: Record<string, true> = {};
  for (const flags of flagSets)
    for (const f of flags) {
      const l = f.toLowerCase();
      if (l.startsWith('\\')) {
        const k = TO_KEYWORD[l];
        if (k) out[k] = true;
      } else out[l] = true;
    }
  return out;
}

/** §4.1.1 keyword syntax: 1-255 of %x21-%x7E but ( ) { ] % * " \ (IMAP atom chars). */
const KEYWORD = /^[!#$&'+,\-./0-9:;<=>?@A-Z[^_`a-z|}~]{1,255}$/;

/** The IMAP flag of a keyword, or null when it is not a valid keyword. */
export function flagOf(keyword: string): string | null {
  if (!KEYWORD.test(keyword)) return null;
  const l = keyword.toLowerCase();
  return TO_FLAG[l] ?? (l === '$recent' || l === '$deleted' ? null : l);
}

/** RFC 8620 §1.4 UTCDate: seconds precision, "Z". */
export const utcDate = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** Opens the message's bytes through the first copy that opens; null when none does (gone
 *  meanwhile). `done` closes the body and releases the mailbox. */
export const openEmail = openLocated;

/** Runs `fn` on the message's bytes (openEmail); null when no copy opens. */
export async function withMessage<T>(
  mailboxes: Mailboxes,
  account: AccountId,
  located: LocatedEmail,
  fn: (body: MessageBody) => Promise<T>,
): Promise<T | null> {
  const m = await openEmail(mailboxes, account, located);
  if (!m) return null;
  try {
    return await fn(m.body);
  } finally {
    await m.done();
  }
}

/** The blob resolver of Emails and their parts (RFC 8621 §4.1.4: blobId). */
export function emailBlobResolver(mailboxes: Mailboxes) {
  return async (_accountId: string, blobId: string, account?: AccountId): Promise<BlobContent | null> => {
    const named = account ? parseBlobId(blobId) : null;
    if (!named || !account) return null;
    const [located] = await mailboxes.locate(account, [named.emailId]);
    if (!located) return null;
    if (named.partId === null) {
      const size = located.size;
      return {
        size,
        // A fresh read of the stored bytes for each stream.
        stream: () =>
          Readable.from(
            (async function* () {
              const m = await openEmail(mailboxes, account, located);
              if (!m) throw new Error('message gone');
              try {
                yield* m.body.stream(0, size);
              } finally {
                await m.done();
              }
            })(),
          ),
      };
    }
    const partId = named.partId;
    const bytes = await withMessage(mailboxes, account, located, async (body) => {
      const parsed = await parseEmail(body, body.size, () => '');
      return partBytes(body, parsed.root, partId, body.size);
    });
    if (!bytes) return null;
    return { size: bytes.length, stream: () => Readable.from([bytes]) };
  };
}
