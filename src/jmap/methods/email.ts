// Email/get (RFC 8621 §4.2) and Email/changes (§4.3) over the store (store/mailboxes.ts:
// locate, accountState, accountChangesSince) and the pure Email representation (jmap/mail/).
// registerEmailMethods registers every Email method and SearchSnippet/get, and the blob
// resolver of Emails and their parts (email-store.ts).
// State strings are the account's journal position (Mailboxes.accountState) in decimal.

import { LIMITS } from '../../core/limits.ts';
import { bufferReader, readRange } from '../../mime/reader.ts';
import type { LocatedEmail, Mailboxes } from '../../store/mailboxes.ts';
import type { BlobStore } from '../blob-store.ts';
import { checkKnownArgs } from '../core/args.ts';
import { type ChangeEntry, changesResponse, foldChanges, parseChanges } from '../core/changes.ts';
import { MethodError } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import type { MethodContext, MethodRegistry } from '../core/registry.ts';
import {
  DEFAULT_BODY_PROPERTIES,
  DEFAULT_EMAIL_PROPERTIES,
  emailProperties,
  invalidProperty,
  parseEmail,
} from '../mail/email.ts';
import { BODY_ARGS, parseBodyArgs } from './email-args.ts';
import { emailQuery, emailQueryChanges, searchSnippetGet } from './email-query.ts';
import { emailCopy, emailImport, emailParse, emailSet } from './email-set.ts';
import {
  emailBlobId,
  emailBlobResolver,
  innerBlobResolver,
  isEmailId,
  keywordsOf,
  partBlobId,
  utcDate,
  withMessage,
} from './email-store.ts';
import { MAIL_CAPABILITY, parseState, stateOf } from './mailboxes.ts';

export interface EmailDeps {
  readonly mailboxes: Mailboxes;
  readonly blobs: BlobStore;
  /** Right-hand side of the Message-IDs of created Emails. */
  readonly hostname: string;
}

/** Messages Email/get reads at once. */
const PARALLEL_READS = 8;
/** A message up to this size is read whole, in one read. */
const WHOLE_READ_BYTES = 64 * 1024;

const METADATA = new Set(['id', 'blobId', 'threadId', 'mailboxIds', 'keywords', 'size', 'receivedAt']);

/** The metadata properties of an Email (§4.1.1) from where its copies are. */
export function emailMetadata(l: LocatedEmail): Record<string, unknown> {
  return {
    id: l.emailId,
    blobId: emailBlobId(l.emailId),
    threadId: l.threadId,
    mailboxIds: Object.fromEntries(l.copies.map((c) => [c.mailboxId, true])),
    keywords: keywordsOf(l.copies.map((c) => c.flags)),
    size: l.size,
    receivedAt: utcDate(l.internalDate),
  };
}

/** §4.2 Email/get. */
export async function emailGet(
  args: Record<string, unknown>,
  ctx: MethodContext,
  deps: EmailDeps,
): Promise<Record<string, unknown>> {
  const x = parseBodyArgs(args);
  const { properties: _p, ...standard } = args;
  const req = parseGet(standard, ctx, []);
  checkKnownArgs(req.rest, BODY_ARGS);
  const properties: string[] = x.properties ?? [...DEFAULT_EMAIL_PROPERTIES];
  const bodyProperties = x.bodyProperties ?? [...DEFAULT_BODY_PROPERTIES];
  const bad = invalidProperty(properties, bodyProperties);
  if (bad !== null) throw new MethodError('invalidArguments', `unknown property ${bad}`);
  const state = await stateOf(deps.mailboxes, ctx.account);
  let ids = req.ids;
  if (ids === null) {
    // §5.1: all of them, when there are at most maxObjectsInGet.
    const max = ctx.limits.maxObjectsInGet;
    const all = await deps.mailboxes.accountMessages(ctx.account, {
      sort: 'receivedAt',
      descending: true,
      position: 0,
      limit: max + 1,
    });
    if (all.total > max) throw new MethodError('requestTooLarge', `more than ${max} emails`);
    ids = all.ids;
  }
  const located = await deps.mailboxes.locate(ctx.account, ids.filter(isEmailId));
  const fromMessage = properties.filter((p) => !METADATA.has(p));
  const opts = {
    fetchTextBodyValues: x.fetchTextBodyValues,
    fetchHTMLBodyValues: x.fetchHTMLBodyValues,
    fetchAllBodyValues: x.fetchAllBodyValues,
    ...(x.maxBodyValueBytes !== undefined ? { maxBodyValueBytes: x.maxBodyValueBytes } : {}),
  };
  const one = async (l: LocatedEmail): Promise<Record<string, unknown> | null> => {
    const o = emailMetadata(l);
    if (fromMessage.length === 0) return o;
    const props = await withMessage(deps.mailboxes, ctx.account, l, async (body) => {
      // A small message is read once (the parser and the body values would read it piece by
      // piece, each read a trip to libuv's pool).
      const reader = body.size <= WHOLE_READ_BYTES ? bufferReader(await readRange(body, 0, body.size)) : body;
      const parsed = await parseEmail(reader, body.size, (partId) => partBlobId(l.emailId, partId));
      return emailProperties(reader, parsed, fromMessage, bodyProperties, opts);
    });
    // Expunged meanwhile: notFound.
    return props ? Object.assign(o, props, { size: l.size }) : null;
  };
  // A few messages at a time: their file reads overlap in libuv's pool.
  const list: Record<string, unknown>[] = [];
  for (let i = 0; i < located.length; i += PARALLEL_READS)
    for (const o of await Promise.all(located.slice(i, i + PARALLEL_READS).map(one))) if (o) list.push(o);
  return getResponse({ ...req, ids, properties: new Set([...properties, 'id']) }, ctx, state, list);
}

/** §4.3 Email/changes: the account journal's message entries after sinceState, mapped per
 *  Email: created when its first copy appeared, destroyed when its last copy went, updated
 *  otherwise (flags; a copy added or removed while another stays: mailboxIds). An Email's
 *  copies before the window are its copies now minus the window's appends plus its expunges. */
export async function emailChanges(
  args: Record<string, unknown>,
  ctx: MethodContext,
  deps: EmailDeps,
): Promise<Record<string, unknown>> {
  const { sinceState, maxChanges } = parseChanges(args, ctx);
  const since = parseState(sinceState);
  if (since === null) throw new MethodError('cannotCalculateChanges', 'unknown state');
  // Deliveries into mailboxes no session has open enter the journal first.
  await deps.mailboxes.indexDeliveries(ctx.account);
  const max = LIMITS.jmapMail.maxChangesScan;
  const rows = await deps.mailboxes.accountChangesSince(ctx.account, since, max + 1);
  if (rows === null) throw new MethodError('cannotCalculateChanges', 'state too old');
  if (rows.length > max) throw new MethodError('cannotCalculateChanges', 'too many changes since that state');
  const msgs = rows.filter(
    (r) => r.emailId !== null && (r.kind === 'append' || r.kind === 'expunge' || r.kind === 'flags'),
  );
  const ids = [...new Set(msgs.map((r) => r.emailId as string))];
  const copies = new Map<string, number>();
  for (let i = 0; i < ids.length; i += 500)
    for (const l of await deps.mailboxes.locate(ctx.account, ids.slice(i, i + 500)))
      copies.set(l.emailId, l.copies.length);
  // Copies the window ended with are those now (a change after the rows read is seen next time:
  // its entry is after newState).
  for (const r of msgs) {
    const id = r.emailId as string;
    const n = copies.get(id) ?? 0;
    if (r.kind === 'append') copies.set(id, n - 1);
    else if (r.kind === 'expunge') copies.set(id, n + 1);
  }
  const entries: ChangeEntry[] = [];
  for (const r of msgs) {
    const id = r.emailId as string;
    const before = Math.max(0, copies.get(id) ?? 0);
    const after = r.kind === 'append' ? before + 1 : r.kind === 'expunge' ? Math.max(0, before - 1) : before;
    copies.set(id, after);
    const state = String(r.aseq);
    if (before === 0 && after > 0) entries.push({ state, id, kind: 'created' });
    else if (before > 0 && after === 0) entries.push({ state, id, kind: 'destroyed' });
    else if (after > 0) entries.push({ state, id, kind: 'updated' });
  }
  const last = rows.at(-1);
  const current = last ? String(last.aseq) : sinceState;
  const r = foldChanges(entries, current, maxChanges);
  return changesResponse(ctx, sinceState, r.hasMoreChanges ? r : { ...r, newState: current });
}

/** Registers the Email methods (RFC 8621 §4), SearchSnippet/get (§5) and the Email blob
 *  resolvers, under the mail capability the Mailbox part registers first (mailbox.ts). */
export function registerEmailMethods(registry: MethodRegistry, deps: EmailDeps): void {
  deps.blobs.addResolver(emailBlobResolver(deps.mailboxes));
  deps.blobs.addResolver(innerBlobResolver(deps.blobs));
  registry.method(MAIL_CAPABILITY, 'Email/get', (a, ctx) => emailGet(a, ctx, deps));
  registry.method(MAIL_CAPABILITY, 'Email/changes', (a, ctx) => emailChanges(a, ctx, deps));
  registry.method(MAIL_CAPABILITY, 'Email/set', (a, ctx) => emailSet(a, ctx, deps));
  registry.method(MAIL_CAPABILITY, 'Email/copy', (a, ctx) => emailCopy(a, ctx));
  registry.method(MAIL_CAPABILITY, 'Email/import', (a, ctx) => emailImport(a, ctx, deps));
  registry.method(MAIL_CAPABILITY, 'Email/parse', (a, ctx) => emailParse(a, ctx, deps));
  registry.method(MAIL_CAPABILITY, 'Email/query', (a, ctx) => emailQuery(a, ctx, deps.mailboxes));
  registry.method(MAIL_CAPABILITY, 'Email/queryChanges', (a, ctx) => emailQueryChanges(a, ctx, deps.mailboxes));
  registry.method(MAIL_CAPABILITY, 'SearchSnippet/get', (a, ctx) => searchSnippetGet(a, ctx, deps.mailboxes));
}
