// Email/set (RFC 8621 §4.6), Email/copy (§4.7), Email/import (§4.8) and Email/parse (§4.9)
// over the store's Mailbox writes, so IMAP sessions see every change as their own kind
// (keywords: a STORE on every copy; a mailbox added: a COPY keeping the Email's identity; a
// mailbox removed: an EXPUNGE of that copy; destroy: every copy expunged).

import { ArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { bufferReader } from '../../mime/reader.ts';
import { notAMessage } from '../../mime/shape.ts';
import type { LocatedEmail, Mailbox, Mailboxes } from '../../store/mailboxes.ts';
import { bufferMessage } from '../../store/spool.ts';
import type { BlobStore } from '../blob-store.ts';
import { checkKnownArgs, resolveId } from '../core/args.ts';
import { MethodError, type SetError, SetFailure } from '../core/errors.ts';
import { nestedPatchPath, pointerTokens } from '../core/pointer.ts';
import { checkAccount, type MethodContext } from '../core/registry.ts';
import { runSet, SET_ARGS } from '../core/set.ts';
import { BuildError, buildMessage } from '../mail/build.ts';
import {
  DEFAULT_BODY_PROPERTIES,
  DEFAULT_PARSE_PROPERTIES,
  emailProperties,
  invalidProperty,
  parseEmail,
} from '../mail/email.ts';
import { BODY_ARGS, parseBodyArgs } from './email-args.ts';
import { emailBlobId, flagOf, innerBlobId, keywordsOf } from './email-store.ts';
import { stateOf } from './mailboxes.ts';

export interface EmailSetDeps {
  readonly mailboxes: Mailboxes;
  readonly blobs: BlobStore;
  /** Right-hand side of the Message-IDs of created Emails. */
  readonly hostname: string;
}

/** Properties an Email/set create may give (§4.6): the metadata a client sets and every
 *  property buildMessage reads; the server-set ones are invalidProperties. */
const SERVER_SET = ['id', 'blobId', 'threadId', 'size', 'hasAttachment', 'preview'];

const MAX_KEYWORDS = 100;

/** mailbox id -> name, for the account (Mailbox ids are kept by the store). */
async function mailboxNames(mailboxes: Mailboxes, account: AccountId): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const m of await mailboxes.list(account, { ids: true })) if (m.id && !m.noselect) out.set(m.id, m.name);
  return out;
}

/** Runs `fn` on an open mailbox (brought up to date when it lacks `uid`), then releases it. */
async function withMailbox<T>(
  mailboxes: Mailboxes,
  account: AccountId,
  name: string,
  uid: number | null,
  fn: (m: Mailbox) => Promise<T>,
): Promise<T> {
  const m = await mailboxes.open(account, name);
  try {
    if (uid === null || !m.meta(uid)) await m.refresh();
    return await fn(m);
  } finally {
    mailboxes.release(account, m);
  }
}

/** A keywords object (§4.1.1): keyword -> true; returns the IMAP flags. */
function flagsOf(keywords: unknown, prop: string): string[] {
  if (typeof keywords !== 'object' || keywords === null || Array.isArray(keywords))
    throw new SetFailure('invalidProperties', 'keywords is an object', [prop]);
  const out: string[] = [];
  for (const [k, v] of Object.entries(keywords)) {
    const f = flagOf(k);
    if (v !== true || f === null) throw new SetFailure('invalidProperties', `bad keyword ${k.slice(0, 64)}`, [prop]);
    out.push(f);
  }
  if (out.length > MAX_KEYWORDS) throw new SetFailure('tooManyKeywords', `more than ${MAX_KEYWORDS} keywords`);
  return out;
}

/** A mailboxIds object (§4.1.1): ids (or "#creationId"s) -> true, at least one, known. */
function mailboxIdsOf(v: unknown, names: ReadonlyMap<string, string>, ctx: MethodContext): string[] {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SetFailure('invalidProperties', 'mailboxIds is an object', ['mailboxIds']);
  const ids: string[] = [];
  for (const [k, on] of Object.entries(v)) {
    const id = resolveId(k, ctx.createdIds);
    if (on !== true || id === null || !names.has(id))
      throw new SetFailure('invalidProperties', `no mailbox ${k.slice(0, 64)}`, ['mailboxIds']);
    if (!ids.includes(id)) ids.push(id);
  }
  // §4.1.1: an Email is in at least one mailbox.
  if (ids.length === 0)
    throw new SetFailure('invalidProperties', 'an Email is in at least one mailbox', ['mailboxIds']);
  return ids;
}

/** Stores `bytes` in the mailboxes (appended to the first, copied to the others, so one Email)
 *  with the flags and date; returns the created Email's server-set properties. */
async function store(
  deps: EmailSetDeps,
  account: AccountId,
  bytes: Buffer,
  mailboxIds: readonly string[],
  names: ReadonlyMap<string, string>,
  flags: readonly string[],
  receivedAt: Date | null,
): Promise<Record<string, unknown>> {
  const [first, ...others] = mailboxIds.map((id) => names.get(id) as string);
  const id = await withMailbox(deps.mailboxes, account, first as string, null, async (m) => {
    const msg = bufferMessage(bytes);
    let uid: number;
    try {
      uid = await m.append(msg, flags, receivedAt);
    } catch (e) {
      if (e instanceof ArclineError && e.code === 'QUOTA') throw new SetFailure('overQuota');
      throw e;
    } finally {
      await msg.dispose();
    }
    for (const name of others)
      await withMailbox(deps.mailboxes, account, name, null, (t) => m.copyTo([uid], t).then(() => undefined));
    return m.emailIds([uid]).get(uid) as string;
  });
  // Its thread, given as the store indexed it (§4.6: threadId is server-set).
  const [located] = await deps.mailboxes.locate(account, [id]);
  return { id, blobId: emailBlobId(id), threadId: located?.threadId ?? null, size: bytes.length };
}

/** The bytes of a blob the account can read (an upload, an Email, a part), at most `max`. */
async function blobBytes(blobs: BlobStore, ctx: MethodContext, blobId: string, max: number): Promise<Buffer | null> {
  const b = await blobs.open(ctx.accountId, blobId, ctx.account);
  if (!b) return null;
  if (b.size > max) throw new SetFailure('tooLarge', `blob ${blobId} is larger than ${max} octets`);
  const chunks: Buffer[] = [];
  for await (const c of b.stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function utcDateArg(v: unknown, prop: string): Date | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z$/.test(v) || Number.isNaN(Date.parse(v)))
    throw new SetFailure('invalidProperties', 'a UTCDate is expected', [prop]);
  return new Date(v);
}

function buildFailure(e: unknown): never {
  if (!(e instanceof BuildError)) throw e;
  throw new SetFailure(
    e.type,
    e.message,
    e.type === 'invalidProperties' ? e.properties : undefined,
    e.type === 'blobNotFound' ? { notFound: e.notFound } : {},
  );
}

/** §4.6 update: keywords and mailboxIds, whole or by patch paths ("keywords/$seen"). */
async function update(
  deps: EmailSetDeps,
  ctx: MethodContext,
  l: LocatedEmail,
  patch: Record<string, unknown>,
  names: ReadonlyMap<string, string>,
): Promise<void> {
  const keywords: Record<string, true> = keywordsOf(l.copies.map((c) => c.flags));
  const inMailboxes: Record<string, true> = Object.fromEntries(l.copies.map((c) => [c.mailboxId, true as const]));
  let keywordsChanged = false;
  // RFC 8620 §5.3: no path inside another; each a JSON pointer (~1 "/", ~0 "~").
  const inside = nestedPatchPath(Object.keys(patch));
  if (inside !== null) throw new SetFailure('invalidPatch', `${inside.slice(0, 100)} is inside another path`);
  for (const [path, value] of Object.entries(patch)) {
    const tokens = pointerTokens(`/${path}`);
    if (tokens === null || tokens.includes('*')) throw new SetFailure('invalidPatch', `bad path ${path.slice(0, 100)}`);
    const [head, ...rest] = tokens;
    const target = head === 'keywords' ? keywords : head === 'mailboxIds' ? inMailboxes : null;
    if (!target) throw new SetFailure('invalidProperties', `${head} cannot be changed`, [path]);
    if (head === 'keywords') keywordsChanged = true;
    if (rest.length === 0) {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new SetFailure('invalidProperties', `${head} is an object`, [path]);
      for (const k of Object.keys(target)) delete target[k];
      for (const [k, v] of Object.entries(value)) {
        if (v !== true) throw new SetFailure('invalidProperties', 'values are true', [path]);
        target[head === 'keywords' ? k.toLowerCase() : k] = true;
      }
    } else if (rest.length === 1) {
      let key = rest[0] as string;
      if (head === 'keywords') key = key.toLowerCase();
      if (value === true) target[key] = true;
      else if (value === null) delete target[key];
      else throw new SetFailure('invalidPatch', `${path} is true or null`);
    } else throw new SetFailure('invalidPatch', `no such path ${path.slice(0, 100)}`);
  }
  const flags = flagsOf(keywords, 'keywords');
  const wanted = mailboxIdsOf(inMailboxes, names, ctx);
  const present = new Set(l.copies.map((c) => c.mailboxId));
  // Keywords first (each copy gets the same flags, its hidden \Deleted kept), so new copies
  // carry them; then the copies added, then those removed.
  if (keywordsChanged)
    for (const c of l.copies) {
      const next = [...flags, ...c.flags.filter((f) => f.toLowerCase() === '\\deleted')];
      const same =
        next.length === c.flags.length && next.every((f) => c.flags.some((g) => g.toLowerCase() === f.toLowerCase()));
      if (!same)
        await withMailbox(deps.mailboxes, ctx.account, c.mailbox, c.uid, (m) => m.storeFlags([c.uid], 'set', next));
    }
  const from = l.copies[0];
  if (!from) throw new SetFailure('notFound');
  for (const id of wanted)
    if (!present.has(id))
      await withMailbox(deps.mailboxes, ctx.account, from.mailbox, from.uid, (m) =>
        withMailbox(deps.mailboxes, ctx.account, names.get(id) as string, null, (t) => m.copyTo([from.uid], t)),
      );
  for (const c of l.copies)
    if (!wanted.includes(c.mailboxId))
      await withMailbox(deps.mailboxes, ctx.account, c.mailbox, c.uid, (m) => m.expunge([c.uid]));
}

async function locateOne(mailboxes: Mailboxes, account: AccountId, id: string): Promise<LocatedEmail> {
  const [l] = await mailboxes.locate(account, [id]);
  if (!l) throw new SetFailure('notFound');
  return l;
}

/** §4.6 Email/set. */
export function emailSet(args: Record<string, unknown>, ctx: MethodContext, deps: EmailSetDeps) {
  checkKnownArgs(args, SET_ARGS);
  let names: Map<string, string> | null = null;
  const known = async () => {
    names ??= await mailboxNames(deps.mailboxes, ctx.account);
    return names;
  };
  return runSet(args, ctx, {
    state: () => stateOf(deps.mailboxes, ctx.account),
    create: async (obj) => {
      const bad = SERVER_SET.filter((p) => p in obj);
      if (bad.length > 0) throw new SetFailure('invalidProperties', 'server-set properties', bad);
      const n = await known();
      const mailboxIds = mailboxIdsOf(obj.mailboxIds, n, ctx);
      const flags = obj.keywords === undefined ? [] : flagsOf(obj.keywords, 'keywords');
      const receivedAt = utcDateArg(obj.receivedAt, 'receivedAt');
      const { mailboxIds: _m, keywords: _k, receivedAt: _r, ...email } = obj;
      const max = ctx.limits.maxSizeUpload;
      const bytes = await buildMessage(email, {
        blob: (id) => blobBytes(deps.blobs, ctx, id, max),
        messageIdDomain: deps.hostname,
      }).catch(buildFailure);
      return store(deps, ctx.account, bytes, mailboxIds, n, flags, receivedAt);
    },
    update: async (id, patch) => {
      await update(deps, ctx, await locateOne(deps.mailboxes, ctx.account, id), patch, await known());
      return null;
    },
    destroy: async (id) => {
      const l = await locateOne(deps.mailboxes, ctx.account, id);
      for (const c of l.copies)
        await withMailbox(deps.mailboxes, ctx.account, c.mailbox, c.uid, (m) => m.expunge([c.uid]));
    },
  });
}

/** §4.8 Email/import: messages from blobs, each into its mailboxes with keywords and date. */
export async function emailImport(
  args: Record<string, unknown>,
  ctx: MethodContext,
  deps: EmailSetDeps,
): Promise<Record<string, unknown>> {
  checkAccount(args.accountId, ctx);
  checkKnownArgs(args, ['accountId', 'ifInState', 'emails']);
  const emails = args.emails;
  if (typeof emails !== 'object' || emails === null || Array.isArray(emails))
    throw new MethodError('invalidArguments', 'emails is an object');
  const entries = Object.entries(emails as Record<string, unknown>);
  if (entries.length > ctx.limits.maxObjectsInSet) throw new MethodError('requestTooLarge');
  const oldState = await stateOf(deps.mailboxes, ctx.account);
  if (args.ifInState !== undefined && args.ifInState !== null && args.ifInState !== oldState)
    throw new MethodError('stateMismatch');
  const names = await mailboxNames(deps.mailboxes, ctx.account);
  const created: Record<string, unknown> = {};
  const notCreated: Record<string, SetError> = {};
  for (const [cid, e] of entries) {
    try {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new SetFailure('invalidProperties');
      const o = e as Record<string, unknown>;
      const unknown = Object.keys(o).filter((k) => !['blobId', 'mailboxIds', 'keywords', 'receivedAt'].includes(k));
      if (unknown.length > 0) throw new SetFailure('invalidProperties', 'unknown properties', unknown);
      if (typeof o.blobId !== 'string') throw new SetFailure('invalidProperties', 'blobId', ['blobId']);
      const mailboxIds = mailboxIdsOf(o.mailboxIds, names, ctx);
      const flags = o.keywords === undefined ? [] : flagsOf(o.keywords, 'keywords');
      const receivedAt = utcDateArg(o.receivedAt, 'receivedAt');
      const bytes = await blobBytes(deps.blobs, ctx, o.blobId, ctx.limits.maxSizeUpload);
      // §4.8: "If the blobId ... [is] invalid (e.g., ... id not found), the server MUST reject
      // the import with an invalidProperties SetError" (blobNotFound is Email/set's, §4.6).
      if (!bytes) throw new SetFailure('invalidProperties', `no blob ${o.blobId.slice(0, 64)}`, ['blobId']);
      // §4.8: "the server MAY reject the import with an invalidEmail SetError" when the blob is
      // not a valid RFC 5322 message; only what is no message at all (mime/shape.ts).
      const why = notAMessage(bytes);
      if (why) throw new SetFailure('invalidEmail', `the blob is not an RFC 5322 message: ${why}`);
      const made = await store(deps, ctx.account, bytes, mailboxIds, names, flags, receivedAt ?? new Date());
      await deps.blobs.keep(ctx.accountId, o.blobId);
      created[cid] = made;
      ctx.createdIds.set(cid, String(made.id));
    } catch (err) {
      if (!(err instanceof SetFailure)) throw err;
      notCreated[cid] = err.error;
    }
  }
  const orNull = (o: object) => (Object.keys(o).length > 0 ? o : null);
  return {
    accountId: ctx.accountId,
    oldState,
    newState: await stateOf(deps.mailboxes, ctx.account),
    created: orNull(created),
    notCreated: orNull(notCreated),
  };
}

/** §4.7 Email/copy: between two accounts (RFC 8620 §5.4: accountId MUST differ from
 *  fromAccountId). A user has one account, so there is no other to copy from. */
export function emailCopy(args: Record<string, unknown>, ctx: MethodContext): never {
  if (args.fromAccountId !== ctx.accountId) throw new MethodError('fromAccountNotFound');
  checkAccount(args.accountId, ctx);
  throw new MethodError('invalidArguments', 'fromAccountId and accountId must differ (RFC 8620 §5.4)');
}

/** §4.9: Email properties that are null in Email/parse (an Email not in the account). */
const PARSE_NULL = ['id', 'threadId', 'mailboxIds', 'keywords', 'receivedAt'] as const;

/** §4.9 Email/parse: uploaded blobs (or any blob the account reads) as Emails. */
export async function emailParse(
  args: Record<string, unknown>,
  ctx: MethodContext,
  deps: EmailSetDeps,
): Promise<Record<string, unknown>> {
  checkAccount(args.accountId, ctx);
  checkKnownArgs(args, ['accountId', 'blobIds', ...BODY_ARGS]);
  const { blobIds } = args;
  if (!Array.isArray(blobIds) || !blobIds.every((x) => typeof x === 'string'))
    throw new MethodError('invalidArguments', 'blobIds is a list of ids');
  if (blobIds.length > ctx.limits.maxObjectsInGet) throw new MethodError('requestTooLarge');
  const x = parseBodyArgs(args);
  const props = x.properties ?? [...DEFAULT_PARSE_PROPERTIES];
  const bodyProps = x.bodyProperties ?? [...DEFAULT_BODY_PROPERTIES];
  // §4.9: the metadata properties "will be null if requested" (threadId too: it is not known
  // before an import).
  const meta = props.filter((p) => (PARSE_NULL as readonly string[]).includes(p));
  const bad = invalidProperty(props, bodyProps);
  if (bad) throw new MethodError('invalidArguments', `property ${bad} cannot be asked for`);
  const opts = {
    fetchTextBodyValues: x.fetchTextBodyValues,
    fetchHTMLBodyValues: x.fetchHTMLBodyValues,
    fetchAllBodyValues: x.fetchAllBodyValues,
    ...(x.maxBodyValueBytes ? { maxBodyValueBytes: x.maxBodyValueBytes } : {}),
  };
  const parsed: Record<string, unknown> = {};
  const notParsable: string[] = [];
  const notFound: string[] = [];
  for (const blobId of blobIds as string[]) {
    const bytes = await blobBytes(deps.blobs, ctx, blobId, ctx.limits.maxSizeUpload).catch(() => null);
    if (!bytes) {
      notFound.push(blobId);
      continue;
    }
    // §4.9 notParsable: a blob that is no RFC 5322 message at all (mime/shape.ts).
    if (notAMessage(bytes)) {
      notParsable.push(blobId);
      continue;
    }
    try {
      const reader = bufferReader(bytes);
      const email = await parseEmail(reader, bytes.length, (partId) => innerBlobId(blobId, partId));
      const o = await emailProperties(reader, email, props, bodyProps, opts);
      for (const p of meta) o[p] = null;
      if (props.includes('blobId')) o.blobId = blobId;
      parsed[blobId] = o;
    } catch {
      notParsable.push(blobId);
    }
  }
  const orNull = <T extends object>(o: T, n: number) => (n > 0 ? o : null);
  return {
    accountId: ctx.accountId,
    parsed: orNull(parsed, Object.keys(parsed).length),
    notParsable: orNull(notParsable, notParsable.length),
    notFound: orNull(notFound, notFound.length),
  };
}
