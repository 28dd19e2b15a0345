// The Email properties that come from the message itself (RFC 8621 §4.1.2-§4.1.4, §4.2 and
// §4.9 Email/parse): header properties, bodyStructure, textBody, htmlBody, attachments,
// hasAttachment, preview, bodyValues. The same functions serve a stored message (a store
// MessageBody) and an uploaded blob (bufferReader); the methods add the metadata (id, blobId,
// threadId, mailboxIds, keywords, receivedAt) themselves.

import { decodeTransfer } from '../../mime/decode.ts';
import { decodedSize, readRange } from '../../mime/reader.ts';
import { type ByteReader, headerValue, type MimePart, parseStructure, resolvePart } from '../../mime/structure.ts';
import { type BodyLists, type BodyTree, bodyLists, bodyTree, type EmailBodyPart, hasAttachment } from './body.ts';
import { type BodyValueOptions, bodyValues, preview } from './body-values.ts';
import { parseHeaderProperty } from './header-forms.ts';
import { CONVENIENCE, type EmailHeader, headerList, headerValueOf } from './headers.ts';

/** RFC 8621 §4.2 Email/get default `properties` (the metadata ones included). */
export const DEFAULT_EMAIL_PROPERTIES = [
  'id',
  'blobId',
  'threadId',
  'mailboxIds',
  'keywords',
  'size',
  'receivedAt',
  'messageId',
  'inReplyTo',
  'references',
  'sender',
  'from',
  'to',
  'cc',
  'bcc',
  'replyTo',
  'subject',
  'sentAt',
  'hasAttachment',
  'preview',
  'bodyValues',
  'textBody',
  'htmlBody',
  'attachments',
] as const;

/** RFC 8621 §4.9 Email/parse default `properties`: the message's own, no metadata. */
export const DEFAULT_PARSE_PROPERTIES = DEFAULT_EMAIL_PROPERTIES.slice(DEFAULT_EMAIL_PROPERTIES.indexOf('messageId'));

/** RFC 8621 §4.2 default `bodyProperties`. */
export const DEFAULT_BODY_PROPERTIES = [
  'partId',
  'blobId',
  'size',
  'name',
  'type',
  'charset',
  'disposition',
  'cid',
  'language',
  'location',
] as const;

const BODY_PART_PROPERTIES = new Set<string>([...DEFAULT_BODY_PROPERTIES, 'headers', 'subParts']);
const BODY_EMAIL_PROPERTIES = new Set([
  'bodyStructure',
  'textBody',
  'htmlBody',
  'attachments',
  'hasAttachment',
  'preview',
  'bodyValues',
]);
const METADATA = new Set(['id', 'blobId', 'threadId', 'mailboxIds', 'keywords', 'size', 'receivedAt']);

/** The first property name that is not valid (the method answers invalidArguments), or null. */
export function invalidProperty(properties: readonly string[], bodyProperties: readonly string[]): string | null {
  for (const p of properties) {
    if (METADATA.has(p) || BODY_EMAIL_PROPERTIES.has(p) || p === 'headers' || p in CONVENIENCE) continue;
    if (parseHeaderProperty(p)) continue;
    return p;
  }
  for (const p of bodyProperties) if (!BODY_PART_PROPERTIES.has(p) && !parseHeaderProperty(p)) return p;
  return null;
}

export interface ParsedEmail {
  readonly size: number;
  readonly root: MimePart;
  readonly headers: EmailHeader[];
  readonly tree: BodyTree;
  readonly lists: BodyLists;
}

/** Parses a message (`size` octets through `reader`); `blobIdOf` names a part's blob. */
export async function parseEmail(
  reader: ByteReader,
  size: number,
  blobIdOf: (partId: string) => string,
): Promise<ParsedEmail> {
  const root = await parseStructure(reader, size);
  const sizes = new Map<MimePart, number>();
  const walk = async (p: MimePart): Promise<void> => {
    sizes.set(p, await decodedSize(reader, p));
    for (const c of p.parts) await walk(c);
  };
  await walk(root);
  const tree = bodyTree(root, blobIdOf, (p) => sizes.get(p) ?? 0);
  return { size, root, headers: headerList(root.header), tree, lists: bodyLists(tree) };
}

/** The properties asked for that come from the message (others, the metadata, are left out
 *  but `size`). Property names must have passed invalidProperty. */
export async function emailProperties(
  reader: ByteReader,
  email: ParsedEmail,
  properties: readonly string[],
  bodyProperties: readonly string[] = DEFAULT_BODY_PROPERTIES,
  opts: BodyValueOptions = {},
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const partOf = (t: BodyTree, withSubParts: boolean): Record<string, unknown> => {
    const o: Record<string, unknown> = {};
    for (const p of bodyProperties) {
      if (p === 'subParts') {
        if (withSubParts) o.subParts = t.part.subParts === null ? null : t.children.map((c) => partOf(c, true));
      } else if (p in t.part) o[p] = t.part[p as keyof EmailBodyPart];
      else o[p] = headerValueOf(t.part.headers, p) ?? null;
    }
    if (withSubParts && !bodyProperties.includes('subParts') && t.part.subParts !== null)
      o.subParts = t.children.map((c) => partOf(c, true));
    return o;
  };
  for (const p of properties) {
    switch (p) {
      case 'size':
        out.size = email.size;
        break;
      case 'bodyStructure':
        out.bodyStructure = partOf(email.tree, true);
        break;
      case 'textBody':
      case 'htmlBody':
      case 'attachments':
        out[p] = email.lists[p].map((t) => partOf(t, false));
        break;
      case 'hasAttachment':
        out.hasAttachment = hasAttachment(email.lists);
        break;
      case 'preview':
        out.preview = await preview(reader, email.lists);
        break;
      case 'bodyValues':
        out.bodyValues = await bodyValues(reader, email.tree, email.lists, opts);
        break;
      default: {
        if (METADATA.has(p)) break;
        const v = headerValueOf(email.headers, p);
        if (v !== undefined) out[p] = v;
      }
    }
  }
  return out;
}

/** The blob of a body part (RFC 8621 §4.1.4 blobId: its content after transfer decoding), or
 *  null when `partId` names no leaf part. `maxBytes` bounds the raw octets read. */
export async function partBytes(
  reader: ByteReader,
  root: MimePart,
  partId: string,
  maxBytes: number,
): Promise<Buffer | null> {
  if (!/^[1-9]\d{0,5}(?:\.[1-9]\d{0,5}){0,50}$/.test(partId)) return null;
  const p = resolvePart(root, partId.split('.').map(Number));
  if (!p || p.type === 'multipart') return null;
  const raw = await readRange(reader, p.bodyStart, Math.min(p.bodyEnd, p.bodyStart + maxBytes));
  return decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding')).bytes;
}
