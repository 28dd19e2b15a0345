// Mailbox/set (RFC 8621 §2.5) through the store's Mailboxes API, so IMAP sees every change at
// once: create (name, parentId, isSubscribed, role when no other mailbox has it), update (name
// and parentId by RENAME, isSubscribed by SUBSCRIBE/UNSUBSCRIBE, sortOrder kept by the store;
// a role cannot change), destroy (mailboxHasChild, mailboxHasEmail unless
// onDestroyRemoveEmails; messages with a copy in another mailbox stay there). INBOX can be
// neither renamed nor destroyed.

import { isArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import { HIERARCHY, SETTABLE_USES } from '../../store/names.ts';
import { checkKnownArgs, resolveId } from '../core/args.ts';
import { MethodError, SetFailure } from '../core/errors.ts';
import { applyPatch, pointerTokens } from '../core/pointer.ts';
import type { MethodContext, MethodRegistry } from '../core/registry.ts';
import { checkSettable, runSet, SET_ARGS } from '../core/set.ts';
import {
  COUNT_PROPERTIES,
  type JmapMailbox,
  loadMailboxes,
  MAIL_CAPABILITY,
  MAILBOX_PROPERTIES,
  mailboxObject,
  specialUseOf,
  stateOf,
} from './mailboxes.ts';

const SETTABLE = ['name', 'parentId', 'role', 'sortOrder', 'isSubscribed'];

/** §2.5: a name is non-empty, at most maxSizeMailboxName octets, without the hierarchy
 *  separator (a level of its own) or control characters. */
function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0)
    throw new SetFailure('invalidProperties', 'name is a non-empty string', ['name']);
  if (Buffer.byteLength(name) > LIMITS.jmap.maxSizeMailboxName)
    throw new SetFailure('invalidProperties', `name is over ${LIMITS.jmap.maxSizeMailboxName} octets`, ['name']);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (name.includes(HIERARCHY) || name.includes('/') || /[\x00-\x1f\x7f]/.test(name))
    throw new SetFailure('invalidProperties', `name may not contain "${HIERARCHY}", "/" or controls`, ['name']);
  return name;
}

/** The IMAP name of a mailbox `name` under `parentId` (null: top level). */
function fullNameOf(all: readonly JmapMailbox[], name: string, parentId: unknown, ctx: MethodContext): string {
  if (parentId === null || parentId === undefined) {
    // INBOX is case-insensitive (RFC 9051 §5.1): "Inbox" at the top level is INBOX.
    if (name.toUpperCase() === 'INBOX') taken(all, 'INBOX');
    return name;
  }
  const id = typeof parentId === 'string' ? resolveId(parentId, ctx.createdIds) : null;
  const parent = all.find((m) => m.id === id);
  if (!parent) throw new SetFailure('invalidProperties', 'no such parent mailbox', ['parentId']);
  return `${parent.fullName}${HIERARCHY}${name}`;
}

/** RFC 8620 §5.3: the PatchObject applied to the Mailbox as it is (a bad pointer, a path into
 *  a property that is no object or does not exist, one path inside another: invalidPatch),
 *  as the new values of the top-level properties it touches (null where it removed one). */
function topLevel(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const r = applyPatch(current, patch);
  if (!r.ok) throw new SetFailure('invalidPatch', r.description);
  const out: Record<string, unknown> = {};
  for (const path of Object.keys(patch)) {
    const head = pointerTokens(`/${path}`)?.[0] ?? path;
    out[head] = Object.hasOwn(r.value, head) ? r.value[head] : null;
  }
  // "If null, set to the default value if specified for this property": sortOrder's is 0 (RFC
  // 8621 §2); parentId's and role's are null already.
  if (out.sortOrder === null) out.sortOrder = 0;
  return out;
}

/** RFC 8620 §5.3 alreadyExists (with existingId) when a mailbox has the name `full` already: a
 *  sibling of the same name under the same parent (RFC 8621 §2.5 forbids two). */
function taken(all: readonly JmapMailbox[], full: string): void {
  const other = all.find((m) => m.fullName === full);
  if (other)
    throw new SetFailure('alreadyExists', 'a mailbox of this name exists under this parent', undefined, {
      existingId: other.id,
    });
}

/** A store refusal (name limits, a name taken) as a SetError about the name. */
async function storeCall(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (isArclineError(e)) throw new SetFailure('invalidProperties', e.message, ['name']);
    throw e;
  }
}

export function registerMailboxSet(registry: MethodRegistry, store: Mailboxes): void {
  registry.method(MAIL_CAPABILITY, 'Mailbox/set', async (args, ctx) => {
    checkKnownArgs(args, [...SET_ARGS, 'onDestroyRemoveEmails']);
    const removeEmails = args.onDestroyRemoveEmails ?? false;
    if (typeof removeEmails !== 'boolean')
      throw new MethodError('invalidArguments', 'onDestroyRemoveEmails is a boolean');
    const account = ctx.account;
    const find = async (id: string) => {
      const m = (await loadMailboxes(store, account)).find((x) => x.id === id);
      if (!m) throw new SetFailure('notFound');
      return m;
    };
    return runSet(args, ctx, {
      state: () => stateOf(store, account),

      async create(o) {
        checkSettable(o, SETTABLE);
        const all = await loadMailboxes(store, account);
        const full = fullNameOf(all, checkName(o.name), o.parentId, ctx);
        taken(all, full);
        const use = await freeRole(all, o.role);
        const sortOrder = checkSortOrder(o.sortOrder);
        const subscribed = o.isSubscribed ?? false;
        if (typeof subscribed !== 'boolean')
          throw new SetFailure('invalidProperties', 'isSubscribed is a boolean', ['isSubscribed']);
        await storeCall(() => store.create(account, full, use ? [use] : []));
        await store.setSubscribed(account, full, subscribed);
        if (sortOrder) await store.setSortOrder(account, full, sortOrder);
        const made = (await loadMailboxes(store, account)).find((m) => m.fullName === full);
        if (!made) throw new Error(`created mailbox ${full} is not listed`);
        const { name: _n, ...rest } = await mailboxObject(store, account, made, true);
        return rest;
      },

      async update(id, sent) {
        const m = await find(id);
        const all = await loadMailboxes(store, account);
        const withCounts = Object.keys(sent).some((p) => (COUNT_PROPERTIES as readonly string[]).includes(p));
        const current = await mailboxObject(store, account, m, withCounts);
        const patch = topLevel(current, sent);
        for (const [k, v] of Object.entries(patch)) {
          if (SETTABLE.includes(k)) continue;
          // A server-set property may be "set" to the value it has (§5.3).
          if (
            !(MAILBOX_PROPERTIES as readonly string[]).includes(k) ||
            JSON.stringify(current[k]) !== JSON.stringify(v)
          )
            throw new SetFailure('invalidProperties', `${k} cannot be set`, [k]);
        }
        if ('role' in patch && patch.role !== m.role)
          throw new SetFailure('invalidProperties', 'the role of a mailbox cannot change', ['role']);
        const sortOrder = checkSortOrder(patch.sortOrder);
        if ('name' in patch || 'parentId' in patch) {
          const name = 'name' in patch ? checkName(patch.name) : m.name;
          const parentId = 'parentId' in patch ? patch.parentId : m.parentId;
          const full = parentId === m.parentId && name === m.name ? m.fullName : fullNameOf(all, name, parentId, ctx);
          if (full !== m.fullName) {
            if (m.fullName === 'INBOX') throw new SetFailure('forbidden', 'INBOX cannot be renamed');
            taken(all, full);
            if (full.startsWith(`${m.fullName}${HIERARCHY}`))
              throw new SetFailure('invalidProperties', 'a mailbox cannot move under itself', ['parentId']);
            await storeCall(() => store.rename(account, m.fullName, full));
          }
        }
        if ('isSubscribed' in patch) {
          if (typeof patch.isSubscribed !== 'boolean')
            throw new SetFailure('invalidProperties', 'isSubscribed is a boolean', ['isSubscribed']);
          const now = (await find(id)).fullName;
          if (patch.isSubscribed !== m.isSubscribed) await store.setSubscribed(account, now, patch.isSubscribed);
        }
        if (sortOrder !== null && sortOrder !== m.sortOrder)
          await store.setSortOrder(account, (await find(id)).fullName, sortOrder);
        return null;
      },

      async destroy(id) {
        const m = await find(id);
        if (m.fullName === 'INBOX') throw new SetFailure('forbidden', 'INBOX cannot be destroyed');
        const all = await loadMailboxes(store, account);
        if (all.some((x) => x.parentId === m.id) || m.hasChildren)
          throw new SetFailure('mailboxHasChild', 'the mailbox has child mailboxes');
        if (!removeEmails && (await emailsIn(store, account, m)) > 0)
          throw new SetFailure('mailboxHasEmail', 'the mailbox has emails (onDestroyRemoveEmails)');
        await storeCall(() => store.delete(account, m.fullName));
      },
    });
  });
}

async function emailsIn(store: Mailboxes, account: AccountId, m: JmapMailbox): Promise<number> {
  const r = await store.accountMessages(account, {
    sort: 'receivedAt',
    descending: false,
    mailboxId: m.id,
    position: 0,
    limit: 0,
  });
  if (r.total > 0) return r.total;
  // Messages delivered but not yet indexed are counted by opening the mailbox.
  const mbox = await store.open(account, m.fullName);
  try {
    return (await mbox.sync()).messages.length;
  } finally {
    store.release(account, mbox);
  }
}

/** §2 sortOrder: an UnsignedInt (RFC 8620 §1.3); null when not given. */
function checkSortOrder(v: unknown): number | null {
  if (v === undefined) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new SetFailure('invalidProperties', 'sortOrder is an unsigned integer', ['sortOrder']);
  return v;
}

/** The special use for a role a new mailbox asks for: one of the settable ones, and no other
 *  mailbox may have it (§2: a role is held by at most one mailbox). */
async function freeRole(all: readonly JmapMailbox[], role: unknown): Promise<string | null> {
  if (role === undefined || role === null) return null;
  if (typeof role !== 'string' || !SETTABLE_USES.has(specialUseOf(role)) || role !== role.toLowerCase())
    throw new SetFailure('invalidProperties', 'not a role a mailbox can be given', ['role']);
  if (all.some((m) => m.role === role))
    throw new SetFailure('invalidProperties', 'another mailbox has this role', ['role']);
  return specialUseOf(role);
}
