// PushSubscription (RFC 8620 §7.2): a client's request to be told of state changes by an HTTP
// POST to its push service. Created with a URL matching one of `[jmap] push_url_patterns`
// (nothing else is ever called: no patterns, no subscriptions, create refused with forbidden),
// then verified: the server POSTs a PushVerification with a random code to the URL, and the
// client sets verificationCode to it (§7.2.2); only then do StateChanges go there. Expiry is
// capped (LIMITS.jmap.maxPushExpiryMs). Subscriptions are kept in JmapState ({state}/jmap.db,
// with their verification state) and taken up again at start; expired ones are deleted by the
// sweep (createJmap's, every LIMITS.jmap.blobSweepMs) and never called. With `keys`, every push
// (the verification too) is encrypted for the user agent (RFC 8291, web-push-encrypt.ts).

import { randomBytes } from 'node:crypto';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { JmapState } from '../jmapstate/types.ts';
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
  unsubscribe: () => void;
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

  constructor(deps: PushSubscriptionDeps) {
    this.#deps = deps;
  }

  /** Takes up the kept subscriptions (server start): expired ones go, the others listen again. */
  async load(): Promise<void> {
    const store = this.#deps.store;
    if (!store) return;
    await store.deleteExpiredPushSubscriptions(Date.now());
    for (const k of await store.pushSubscriptions()) {
      const d = k.data;
      const keys = d.keys == null ? null : parsePushKeys(d.keys);
      if (keys === null && d.keys != null) continue; // never sent in the clear
      const sub: Subscription = {
        id: k.id,
        deviceClientId: String(d.deviceClientId),
        url: String(d.url),
        rawKeys: d.keys ?? null,
        keys,
        verificationCode: typeof d.verificationCode === 'string' ? d.verificationCode : null,
        sentCode: String(d.sentCode),
        expires: new Date(k.expires),
        types: Array.isArray(d.types) ? (d.types as string[]) : null,
        unsubscribe: () => {},
      };
      this.#listen(k.account, sub);
    }
  }

  /** Deletes the expired subscriptions (kept and in memory). */
  async sweep(): Promise<void> {
    for (const { account, id } of (await this.#deps.store?.deleteExpiredPushSubscriptions(Date.now())) ?? []) {
      const m = this.#byAccount.get(account);
      m?.get(id)?.unsubscribe();
      m?.delete(id);
    }
    for (const account of this.#byAccount.keys()) this.#subs(account);
  }

  #listen(account: AccountId, sub: Subscription): void {
    const accountId = accountIdOf(account);
    let m = this.#byAccount.get(account);
    if (!m) {
      m = new Map();
      this.#byAccount.set(account, m);
    }
    m.set(sub.id, sub);
    sub.unsubscribe = this.#deps.hub.subscribe(account, (changed) => this.#push(sub, accountId, changed));
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
        s.unsubscribe();
        m.delete(id);
        this.#deps.store?.deletePushSubscription(account, id).catch(() => {});
      }
    }
    return m;
  }

  // §7.2.1: no accountId argument (subscriptions belong to the user), no state.
  #get(args: Record<string, unknown>, ctx: MethodContext): Record<string, unknown> {
    const req = parseGet({ ...args, accountId: ctx.accountId }, ctx, PROPERTIES);
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
    const subs = this.#subs(ctx.account);
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
          unsubscribe: () => {},
        };
        await this.#save(ctx.account, sub);
        this.#listen(ctx.account, sub);
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
        const changed: Record<string, unknown> = {};
        if ('verificationCode' in patch) {
          if (patch.verificationCode !== sub.sentCode)
            throw new SetFailure('invalidProperties', 'wrong verification code', ['verificationCode']);
          sub.verificationCode = sub.sentCode;
        }
        if ('types' in patch) sub.types = parseTypes(patch.types);
        if ('expires' in patch) {
          sub.expires = capExpiry(patch.expires);
          if (patch.expires !== utcDate(sub.expires)) changed.expires = utcDate(sub.expires);
        }
        await this.#save(ctx.account, sub);
        return Object.keys(changed).length > 0 ? changed : null;
      },
      destroy: async (id) => {
        const sub = subs.get(id);
        if (!sub) throw new SetFailure('notFound');
        await this.#deps.store?.deletePushSubscription(ctx.account, id);
        sub.unsubscribe();
        subs.delete(id);
      },
    });
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
    for (const m of this.#byAccount.values()) for (const s of m.values()) s.unsubscribe();
    this.#byAccount.clear();
  }
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
