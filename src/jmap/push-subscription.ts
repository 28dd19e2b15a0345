// PushSubscription (RFC 8620 §7.2): a client's request to be told of state changes by an HTTP
// POST to its push service. Created with a URL matching one of `[jmap] push_url_patterns`
// (nothing else is ever called: no patterns, no subscriptions, create refused with forbidden),
// then verified: the server POSTs a PushVerification with a random code to the URL, and the
// client sets verificationCode to it (§7.2.2); only then do StateChanges go there. Expiry is
// capped (LIMITS.jmap.maxPushExpiryMs). Subscriptions are kept in JmapState ({state}/jmap.db,
// with their verification state) and taken up again at start; expired ones are deleted by the
// sweep (createJmap's, every LIMITS.jmap.blobSweepMs) and never called. With `keys`, every push
// (the verification too) is encrypted for the user agent (RFC 8291, web-push-encrypt.ts).
//
// On a cluster (docs/cluster.md "JMAP push across nodes") the store is shared and `peers`
// (push-peers.ts) is set: every /get and /set reads the account's subscriptions from the store
// first (a subscription made through one node is verified or destroyed through another), each
// /set that changed something is announced to the other nodes, which read the account again,
// and only the node that `owns` a subscription listens for its changes and POSTs them (one POST
// per change whichever node made it; ownership moves when the set of live nodes changes).

import { randomBytes } from 'node:crypto';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { JmapState, StoredPushSubscription } from '../jmapstate/types.ts';
import { SetFailure } from './core/errors.ts';
import { getResponse, parseGet } from './core/get.ts';
import type { MethodContext, MethodRegistry } from './core/registry.ts';
import { CORE_CAPABILITY } from './core/registry.ts';
import { checkSettable, runSet } from './core/set.ts';
import type { PushHub, StateChanges } from './push.ts';
import { accountIdOf } from './session.ts';
import { encryptPush, type PushKeys, parsePushKeys } from './web-push-encrypt.ts';

interface Subscription {
  id: string;
  deviceClientId: string;
  url: string;
  keys: PushKeys | null;
  /** `keys` as the client gave them (kept). */
  rawKeys: unknown;
  verificationCode: string | null;
  /** The code sent to the URL (never returned by /get). */
  sentCode: string;
  expires: Date;
  types: string[] | null;
  /** Stops listening; null while this node does not listen for it (another node owns it). */
  unsubscribe: (() => void) | null;
}

/** The other nodes of a cluster (push-peers.ts). */
export interface PushPeers {
  /** Whether this node POSTs the StateChanges of subscription `id` (one live node does). */
  owns(id: string): boolean;
  /** Tells the other nodes that `account`'s subscriptions changed in the store. */
  announce(account: AccountId): void;
}

/** §7.2.1: url and keys are never returned by /get. */
const PROPERTIES = ['id', 'deviceClientId', 'verificationCode', 'expires', 'types'];

/** A URL matches a pattern where "*" stands for any characters (no backtracking: each literal
 *  piece is found left to right, the last one at the end). */
export function urlMatches(url: string, pattern: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return url === pattern;
  const first = parts[0] as string;
  const last = parts[parts.length - 1] as string;
  if (!url.startsWith(first) || url.length < first.length + last.length) return false;
  let at = first.length;
  for (const p of parts.slice(1, -1)) {
    const i = url.indexOf(p, at);
    if (i < 0) return false;
    at = i + p.length;
  }
  return url.length - last.length >= at && url.endsWith(last);
}

export interface PushSubscriptionDeps {
  readonly hub: PushHub;
  readonly patterns: readonly string[];
  readonly log: Logger;
  /** The POST itself (default: fetch, postBody below). */
  readonly post?: (url: string, body: Buffer, headers: Record<string, string>) => Promise<void>;
  /** Where subscriptions are kept (JmapState); without it they live in memory only. */
  readonly store?: Pick<
    JmapState,
    'pushSubscriptions' | 'putPushSubscription' | 'deletePushSubscription' | 'deleteExpiredPushSubscriptions'
  > | null;
}

export class PushSubscriptions {
  readonly #deps: PushSubscriptionDeps;
  readonly #byAccount = new Map<AccountId, Map<string, Subscription>>();
  #peers: PushPeers | null = null;

  constructor(deps: PushSubscriptionDeps) {
    this.#deps = deps;
  }

  /** Takes up the kept subscriptions (server start): expired ones go, the others listen again. */
  async load(): Promise<void> {
    const store = this.#deps.store;
    if (!store) return;
    await store.deleteExpiredPushSubscriptions(Date.now());
    for (const k of await store.pushSubscriptions()) {
      const sub = fromStored(k);
      if (sub) this.#add(k.account, sub);
    }
  }

  /** The other nodes of a cluster: from now on only owned subscriptions are listened to. */
  setPeers(peers: PushPeers | null): void {
    this.#peers = peers;
    this.rebalance();
  }

  /** Listens for the subscriptions this node owns and stops for the others (the live nodes changed). */
  rebalance(): void {
    for (const [account, m] of this.#byAccount) for (const sub of m.values()) this.#follow(account, sub);
  }

  /** Reads `account`'s subscriptions from the store again (another node changed them): new ones
   *  are taken up, gone ones stop, the others take the stored verification, expiry and types. */
  async reload(account: AccountId): Promise<void> {
    const store = this.#deps.store;
    if (!store) return;
    const kept = await store.pushSubscriptions(account);
    const m = this.#byAccount.get(account) ?? new Map<string, Subscription>();
    const ids = new Set<string>();
    for (const k of kept) {
      const fresh = fromStored(k);
      if (!fresh) continue;
      ids.add(k.id);
      const had = m.get(k.id);
      if (!had) this.#add(account, fresh);
      else {
        had.verificationCode = fresh.verificationCode;
        had.expires = fresh.expires;
        had.types = fresh.types;
      }
    }
    for (const [id, sub] of m) {
      if (ids.has(id)) continue;
      sub.unsubscribe?.();
      m.delete(id);
    }
  }

  /** reload() for every account (the cluster's listening session was lost meanwhile). */
  async reloadAll(): Promise<void> {
    const store = this.#deps.store;
    if (!store) return;
    const accounts = new Set<AccountId>(this.#byAccount.keys());
    for (const k of await store.pushSubscriptions()) accounts.add(k.account);
    for (const account of accounts) await this.reload(account);
  }

  /** Deletes the expired subscriptions (kept and in memory). */
  async sweep(): Promise<void> {
    for (const { account, id } of (await this.#deps.store?.deleteExpiredPushSubscriptions(Date.now())) ?? []) {
      const m = this.#byAccount.get(account);
      m?.get(id)?.unsubscribe?.();
      m?.delete(id);
    }
    for (const account of this.#byAccount.keys()) this.#subs(account);
  }

  #add(account: AccountId, sub: Subscription): void {
    let m = this.#byAccount.get(account);
    if (!m) {
      m = new Map();
      this.#byAccount.set(account, m);
    }
    m.set(sub.id, sub);
    this.#follow(account, sub);
  }

  /** Listens for `sub` when this node owns it (always, alone), else not. */
  #follow(account: AccountId, sub: Subscription): void {
    const owned = this.#peers?.owns(sub.id) ?? true;
    if (owned && sub.unsubscribe === null) {
      const accountId = accountIdOf(account);
      sub.unsubscribe = this.#deps.hub.subscribe(account, (changed) => this.#push(sub, accountId, changed));
    } else if (!owned && sub.unsubscribe !== null) {
      sub.unsubscribe();
      sub.unsubscribe = null;
    }
  }

  async #save(account: AccountId, s: Subscription): Promise<void> {
    await this.#deps.store?.putPushSubscription({
      account,
      id: s.id,
      expires: s.expires.getTime(),
      data: {
        deviceClientId: s.deviceClientId,
        url: s.url,
        keys: s.rawKeys,
        verificationCode: s.verificationCode,
        sentCode: s.sentCode,
        types: s.types,
      },
    });
  }

  register(registry: MethodRegistry): void {
    registry.method(CORE_CAPABILITY, 'PushSubscription/get', (args, ctx) => this.#get(args, ctx));
    registry.method(CORE_CAPABILITY, 'PushSubscription/set', (args, ctx) => this.#set(args, ctx));
  }

  #subs(account: AccountId): Map<string, Subscription> {
    let m = this.#byAccount.get(account);
    if (!m) {
      m = new Map();
      this.#byAccount.set(account, m);
    }
    const now = Date.now();
    for (const [id, s] of m) {
      if (s.expires.getTime() <= now) {
        s.unsubscribe?.();
        m.delete(id);
        this.#deps.store?.deletePushSubscription(account, id).catch(() => {});
      }
    }
    return m;
  }

  // §7.2.1: no accountId argument (subscriptions belong to the user), no state.
  async #get(args: Record<string, unknown>, ctx: MethodContext): Promise<Record<string, unknown>> {
    const req = parseGet({ ...args, accountId: ctx.accountId }, ctx, PROPERTIES);
    if (this.#peers) await this.reload(ctx.account);
    const subs = this.#subs(ctx.account);
    const found = [...subs.values()]
      .filter((s) => req.ids === null || req.ids.includes(s.id))
      .map((s) => ({
        id: s.id,
        deviceClientId: s.deviceClientId,
        verificationCode: s.verificationCode,
        expires: utcDate(s.expires),
        types: s.types,
      }));
    const { accountId: _a, state: _s, ...r } = getResponse(req, ctx, '', found);
    return r;
  }

  async #set(args: Record<string, unknown>, ctx: MethodContext): Promise<Record<string, unknown>> {
    const peers = this.#peers;
    if (peers) await this.reload(ctx.account);
    const subs = this.#subs(ctx.account);
    let changed = false;
    const r = await runSet({ ...args, accountId: ctx.accountId }, ctx, {
      state: () => '',
      create: async (o) => {
        checkSettable(o, ['deviceClientId', 'url', 'keys', 'expires', 'types']);
        const keys = o.keys === undefined || o.keys === null ? null : parsePushKeys(o.keys);
        if (keys === null && o.keys !== undefined && o.keys !== null)
          throw new SetFailure('invalidProperties', 'keys are a P-256 p256dh and a 16-byte auth (RFC 8291)', ['keys']);
        const { deviceClientId, url } = o;
        if (typeof deviceClientId !== 'string' || deviceClientId.length === 0 || deviceClientId.length > 255)
          throw new SetFailure('invalidProperties', 'deviceClientId is a string', ['deviceClientId']);
        if (typeof url !== 'string' || url.length > 2000 || !/^https?:\/\//.test(url))
          throw new SetFailure('invalidProperties', 'url is an http(s) URL', ['url']);
        if (!this.#deps.patterns.some((p) => urlMatches(url, p)))
          throw new SetFailure('forbidden', 'this push URL is not allowed here ([jmap] push_url_patterns)');
        if (subs.size >= LIMITS.jmap.maxPushSubscriptions) throw new SetFailure('overQuota', 'too many subscriptions');
        const types = parseTypes(o.types);
        const expires = capExpiry(o.expires);
        const id = `P${randomBytes(12).toString('base64url')}`;
        const sub: Subscription = {
          id,
          deviceClientId,
          url,
          keys,
          rawKeys: keys === null ? null : o.keys,
          verificationCode: null,
          sentCode: randomBytes(16).toString('base64url'),
          expires,
          types,
          unsubscribe: null,
        };
        await this.#save(ctx.account, sub);
        changed = true;
        this.#add(ctx.account, sub);
        // §7.2.2: the verification goes to the URL now; the response does not wait for it.
        this.#send(sub, { '@type': 'PushVerification', pushSubscriptionId: id, verificationCode: sub.sentCode });
        const expiresChanged = o.expires !== utcDate(expires);
        return { id, ...(expiresChanged ? { expires: utcDate(expires) } : {}) };
      },
      update: async (id, patch) => {
        const sub = subs.get(id);
        if (!sub) throw new SetFailure('notFound');
        const bad = Object.keys(patch).filter((k) => !['verificationCode', 'expires', 'types'].includes(k));
        if (bad.length > 0) throw new SetFailure('invalidProperties', 'these properties cannot be changed', bad);
        const patched: Record<string, unknown> = {};
        if ('verificationCode' in patch) {
          if (patch.verificationCode !== sub.sentCode)
            throw new SetFailure('invalidProperties', 'wrong verification code', ['verificationCode']);
          sub.verificationCode = sub.sentCode;
        }
        if ('types' in patch) sub.types = parseTypes(patch.types);
        if ('expires' in patch) {
          sub.expires = capExpiry(patch.expires);
          if (patch.expires !== utcDate(sub.expires)) patched.expires = utcDate(sub.expires);
        }
        await this.#save(ctx.account, sub);
        changed = true;
        return Object.keys(patched).length > 0 ? patched : null;
      },
      destroy: async (id) => {
        const sub = subs.get(id);
        if (!sub) throw new SetFailure('notFound');
        await this.#deps.store?.deletePushSubscription(ctx.account, id);
        changed = true;
        sub.unsubscribe?.();
        subs.delete(id);
      },
    });
    if (changed) peers?.announce(ctx.account);
    const { accountId: _a, oldState: _o, newState: _n, ...rest } = r;
    return rest;
  }

  #push(sub: Subscription, accountId: string, changed: StateChanges): void {
    if (sub.verificationCode === null || sub.expires.getTime() <= Date.now()) return;
    const wanted = Object.entries(changed).filter(([t]) => sub.types === null || sub.types.includes(t));
    if (wanted.length === 0) return;
    this.#send(sub, { '@type': 'StateChange', changed: { [accountId]: Object.fromEntries(wanted) } });
  }

  #send(sub: Subscription, body: unknown): void {
    // Checked again at every send: the URL was checked at create, the patterns may not change
    // under a running server, but nothing outside them is ever called.
    if (!this.#deps.patterns.some((p) => urlMatches(sub.url, p))) return;
    const post = this.#deps.post ?? postBody;
    const json = Buffer.from(JSON.stringify(body));
    const [data, headers] = sub.keys
      ? [encryptPush(json, sub.keys), { 'content-type': 'application/octet-stream', 'content-encoding': 'aes128gcm' }]
      : [json, { 'content-type': 'application/json' }];
    post(sub.url, data, { ...headers, ttl: '86400' }).catch((e: unknown) =>
      this.#deps.log.info({ subscription: sub.id, err: String(e) }, 'jmap push failed'),
    );
  }

  /** Stops every subscription in memory (server stop; the kept ones are taken up at start). */
  close(): void {
    for (const m of this.#byAccount.values()) for (const s of m.values()) s.unsubscribe?.();
    this.#byAccount.clear();
  }
}

/** A kept subscription as this node holds it (not listening yet); null for keys that no longer
 *  parse (never sent in the clear). */
function fromStored(k: StoredPushSubscription): Subscription | null {
  const d = k.data;
  const keys = d.keys == null ? null : parsePushKeys(d.keys);
  if (keys === null && d.keys != null) return null;
  return {
    id: k.id,
    deviceClientId: String(d.deviceClientId),
    url: String(d.url),
    rawKeys: d.keys ?? null,
    keys,
    verificationCode: typeof d.verificationCode === 'string' ? d.verificationCode : null,
    sentCode: String(d.sentCode),
    expires: new Date(k.expires),
    types: Array.isArray(d.types) ? (d.types as string[]) : null,
    unsubscribe: null,
  };
}

function parseTypes(v: unknown): string[] | null {
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length > 64 || !v.every((t) => typeof t === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(t)))
    throw new SetFailure('invalidProperties', 'types is a list of type names or null', ['types']);
  return v as string[];
}

function capExpiry(v: unknown): Date {
  const max = Date.now() + LIMITS.jmap.maxPushExpiryMs;
  if (v === undefined || v === null) return new Date(Math.floor(max / 1000) * 1000);
  const t = typeof v === 'string' ? Date.parse(v) : Number.NaN;
  if (!Number.isFinite(t)) throw new SetFailure('invalidProperties', 'expires is a UTCDate', ['expires']);
  return new Date(Math.floor(Math.min(t, max) / 1000) * 1000);
}

/** RFC 8620 §1.4 UTCDate: no fraction of a second when it is zero. */
function utcDate(d: Date): string {
  return d.toISOString().replace('.000Z', 'Z');
}

/** POSTs a push message (RFC 8030 §5: TTL header), no redirects followed. */
async function postBody(url: string, body: Buffer, headers: Record<string, string>): Promise<void> {
  const r = await fetch(url, {
    method: 'POST',
    headers,
    body: new Uint8Array(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(LIMITS.jmap.pushTimeoutMs),
  });
  await r.body?.cancel();
  if (r.status >= 300) throw new Error(`push service answered ${r.status}`);
}
