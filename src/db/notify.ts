// Change fan-out between the nodes of a cluster over LISTEN/NOTIFY (issue #18, docs/cluster.md
// "Coordination"). A change committed on one node reaches the IDLE and JMAP push clients of
// every node: the committing node publishes (account, MODSEQ) on the channel arcline_mail, every
// node's Notifier receives it and tells that account's subscribers, which read what changed
// from the journal (the store's changesSince / accountChangesSince). The payload carries only
// the position, never the change: PostgreSQL bounds a payload to 8,000 bytes, and the journal is
// the truth anyway.
//
// - Publishing (notifyChange, notify) runs on any Queryable: inside the committing transaction
//   (pg_notify in the tx: PostgreSQL delivers it only at COMMIT, never for a rollback) or outside
//   one (the pool: delivered at once).
// - Listening: one dedicated session per node (db/session.ts), LISTENing to every channel that
//   has a subscriber; payloads are never trusted: a mail payload is "<modseq> <account>", bounded
//   (LIMITS.cluster.maxMailPayloadBytes), the MODSEQ a safe integer, the account a canonical
//   address (parseAddress then formatAddress gives it back unchanged); anything else is dropped
//   and counted.
// - Bursts are coalesced: the first notification starts a LIMITS.cluster.notifyCoalesceMs timer;
//   those arriving before it fires join it, one call per account with its highest MODSEQ (and
//   never one at or below a MODSEQ already dispatched), one per distinct payload elsewhere.
// - A lost session (pg_terminate_backend, a restart, a failover, a ping unanswered within
//   LIMITS.cluster.pingTimeoutMs) is made again after a jittered backoff doubling from
//   reconnectInitialMs to reconnectMaxMs; PostgreSQL does not keep notifications for a session
//   that was away, so after each reconnection the onResync hooks run: the store catches up
//   every watched account from its journal (notifications published meanwhile are lost).

import type pg from 'pg';
import { formatAddress, parseAddress } from '../core/address.ts';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Queryable } from './postgres.ts';
import { backendPid, closeSession, openSession, ping, type SessionOptions } from './session.ts';

const C = LIMITS.cluster;
/** The channel of mail-store changes: payload "<modseq> <account>". */
export const MAIL_CHANNEL = 'arcline_mail';
/** Channel names: identifiers we quote ourselves (LISTEN takes no parameter). */
const CHANNEL = /^[a-z][a-z0-9_]{0,62}$/;

export type ChangeListener = (modseq: number) => void;
export type PayloadListener = (payload: string) => void;

/** True for the canonical form of an account id (a normalised address, as the directory
 *  makes it): what a mail payload must carry. */
export function isAccountId(s: string): s is AccountId {
  if (s.length === 0 || Buffer.byteLength(s) > LIMITS.srs.maxAddress) return false;
  const a = parseAddress(s);
  return a !== null && formatAddress(a) === s;
}

/** "<modseq> <account>" of a mail change, or null for anything else. */
export function parseMailPayload(payload: string): { account: AccountId; modseq: number } | null {
  if (payload.length > C.maxMailPayloadBytes) return null;
  const sp = payload.indexOf(' ');
  if (sp < 1 || sp > 16) return null;
  const digits = payload.slice(0, sp);
  if (!/^[0-9]+$/.test(digits)) return null;
  const modseq = Number(digits);
  if (!Number.isSafeInteger(modseq)) return null;
  const account = payload.slice(sp + 1);
  return isAccountId(account) ? { account, modseq } : null;
}

export function mailPayload(account: AccountId, modseq: number): string {
  if (!isAccountId(account)) throw new ArclineError('INVALID', 'notify: not an account id');
  if (!Number.isSafeInteger(modseq) || modseq < 0) throw new ArclineError('INVALID', 'notify: not a MODSEQ');
  return `${modseq} ${account}`;
}

/** Publishes a mail change: the account's journal reached `modseq` (the account journal's
 *  position, what JMAP states and accountChangesSince use). Inside a transaction (`q` its
 *  client) it is delivered only if and when that transaction commits. */
export async function notifyChange(q: Queryable, account: AccountId, modseq: number): Promise<void> {
  await q.query('SELECT pg_notify($1, $2)', [MAIL_CHANNEL, mailPayload(account, modseq)]);
}

/** Publishes on another channel (the directory's reload...). Same transaction rule. */
export async function notify(q: Queryable, channel: string, payload = ''): Promise<void> {
  checkChannel(channel);
  if (Buffer.byteLength(payload) > C.maxPayloadBytes)
    throw new ArclineError('INVALID', `notify: payload over ${C.maxPayloadBytes} bytes`);
  await q.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

function checkChannel(channel: string): void {
  if (!CHANNEL.test(channel)) throw new ArclineError('INVALID', `notify: not a channel name: ${channel}`);
}

export interface NotifierOptions {
  readonly session: SessionOptions;
  readonly log?: Logger;
  /** Tests: a deterministic jitter. */
  readonly random?: () => number;
}

export interface NotifierStats {
  /** Notifications received; dropped as malformed (or for an unknown channel's overlong
   *  payload); dropped past LIMITS.cluster.maxPendingPayloads; reconnections made. */
  readonly received: number;
  readonly malformed: number;
  readonly dropped: number;
  readonly reconnects: number;
}

export class Notifier {
  readonly #o: NotifierOptions;
  readonly #random: () => number;
  #client: pg.Client | null = null;
  #closed = false;
  #failures = 0;
  #reconnect: NodeJS.Timeout | null = null;
  #ping: NodeJS.Timeout | null = null;
  #flush: NodeJS.Timeout | null = null;
  readonly #accounts = new Map<AccountId, Set<ChangeListener>>();
  /** The highest MODSEQ dispatched per watched account (forgotten at a resync). */
  readonly #dispatched = new Map<AccountId, number>();
  readonly #pendingMail = new Map<AccountId, number>();
  readonly #channels = new Map<string, Set<PayloadListener>>();
  readonly #pending = new Map<string, Set<string>>();
  readonly #resync = new Set<() => void>();
  #overflowed = false;
  #stats = { received: 0, malformed: 0, dropped: 0, reconnects: 0 };

  private constructor(o: NotifierOptions) {
    this.#o = o;
    this.#random = o.random ?? Math.random;
  }

  /** Connects and LISTENs to the mail channel; a first connection that fails throws (as
   *  Postgres.open does at start); later losses are reconnected for ever. */
  static async start(o: NotifierOptions): Promise<Notifier> {
    const n = new Notifier(o);
    await n.#connect();
    n.#ping = setInterval(() => void n.#checkAlive(), C.listenPingMs);
    n.#ping.unref();
    return n;
  }

  get connected(): boolean {
    return this.#client !== null;
  }

  get stats(): NotifierStats {
    return { ...this.#stats };
  }

  /** The backend of the listening session (tests terminate it), or null while away. */
  get backendPid(): number | null {
    return this.#client ? backendPid(this.#client) : null;
  }

  /** Tells `listener` of the account's changes made on any node (this one included), each
   *  with the journal position reached; returns the function that stops it. */
  watchAccount(account: AccountId, listener: ChangeListener): () => void {
    let set = this.#accounts.get(account);
    if (!set) {
      set = new Set();
      this.#accounts.set(account, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#accounts.get(account) === set) {
        this.#accounts.delete(account);
        this.#dispatched.delete(account);
        this.#pendingMail.delete(account);
      }
    };
  }

  /** Tells `listener` of every payload published on `channel` (not the mail channel); resolves
   *  once the session LISTENs to it (or, while away, once it is registered: the reconnection
   *  LISTENs and resyncs). Listeners must validate the payload: anyone who can connect can
   *  publish. */
  async listen(channel: string, listener: PayloadListener): Promise<() => void> {
    checkChannel(channel);
    if (channel === MAIL_CHANNEL) throw new ArclineError('INVALID', `notify: ${MAIL_CHANNEL} is watchAccount's`);
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      const c = this.#client;
      if (c) await c.query(`LISTEN ${channel}`).catch(() => {}); // a lost session LISTENs again
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#channels.get(channel) === set) {
        this.#channels.delete(channel);
        this.#pending.delete(channel);
        this.#client?.query(`UNLISTEN ${channel}`).catch(() => {});
      }
    };
  }

  /** `hook` runs after every reconnection: notifications of the time away are lost, so what
   *  depends on them catches up (the store: changesSince for every watched account). */
  onResync(hook: () => void): () => void {
    this.#resync.add(hook);
    return () => this.#resync.delete(hook);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of [this.#reconnect, this.#flush]) if (t) clearTimeout(t);
    if (this.#ping) clearInterval(this.#ping);
    const c = this.#client;
    this.#client = null;
    if (c) await c.end().catch(() => {});
  }

  /** A new listening session, LISTENing to every channel, made the current one. A channel
   *  whose first listener came while this ran is LISTENed too (listen() saw no session); the
   *  session becomes current synchronously after the last check, so none is missed. */
  async #connect(): Promise<pg.Client> {
    const c = await openSession(this.#o.session, 'listen');
    let ended = false;
    c.on('notification', (m) => this.#received(m.channel, m.payload));
    c.on('error', (e) => {
      ended = true;
      this.#lost(c, e);
    });
    c.on('end', () => {
      ended = true;
      this.#lost(c, null);
    });
    try {
      const done = new Set<string>();
      for (;;) {
        const todo = [MAIL_CHANNEL, ...this.#channels.keys()].filter((ch) => !done.has(ch));
        if (todo.length === 0) break;
        for (const ch of todo) {
          await c.query(`LISTEN ${ch}`);
          done.add(ch);
        }
      }
      if (ended) throw new Error('the session ended while it was set up');
    } catch (e) {
      closeSession(c);
      throw e;
    }
    if (!this.#closed) this.#client = c;
    return c;
  }

  async #checkAlive(): Promise<void> {
    const c = this.#client;
    if (!c || (await ping(c, C.pingTimeoutMs))) return;
    this.#lost(c, new Error('no answer to a ping'));
  }

  #lost(c: pg.Client, e: Error | null): void {
    if (this.#client !== c) return;
    this.#client = null;
    closeSession(c);
    if (this.#closed) return;
    this.#o.log?.warn({ err: e ? errorMessage(e) : 'connection ended' }, 'cluster: notification session lost');
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#reconnect) return;
    const base = Math.min(C.reconnectMaxMs, C.reconnectInitialMs * 2 ** this.#failures);
    const ms = Math.round(base * (0.5 + this.#random() / 2));
    this.#reconnect = setTimeout(() => {
      this.#reconnect = null;
      this.#connect().then(
        (c) => {
          if (this.#closed) {
            closeSession(c);
            return;
          }
          this.#failures = 0;
          this.#stats.reconnects++;
          this.#o.log?.info({}, 'cluster: notification session back; resynchronising');
          this.#dispatched.clear();
          for (const h of this.#resync) this.#call(() => h());
        },
        (e: unknown) => {
          this.#failures++;
          this.#o.log?.warn({ err: errorMessage(e) }, 'cluster: notification session: reconnect failed');
          this.#schedule();
        },
      );
    }, ms);
    this.#reconnect.unref();
  }

  #received(channel: string, payload: string | undefined): void {
    this.#stats.received++;
    if (payload === undefined || payload.length > C.maxPayloadBytes) {
      this.#stats.malformed++;
      return;
    }
    if (channel === MAIL_CHANNEL) {
      const m = parseMailPayload(payload);
      if (!m) {
        this.#stats.malformed++;
        return;
      }
      if (!this.#accounts.has(m.account)) return;
      if ((this.#pendingMail.get(m.account) ?? -1) < m.modseq) this.#pendingMail.set(m.account, m.modseq);
    } else {
      if (!this.#channels.has(channel)) return;
      let set = this.#pending.get(channel);
      if (!set) {
        set = new Set();
        this.#pending.set(channel, set);
      }
      if (set.size >= C.maxPendingPayloads) {
        // Too many distinct payloads at once: the excess is lost, as during a disconnection,
        // so the resync hooks run after this dispatch.
        this.#stats.dropped++;
        this.#overflowed = true;
      } else set.add(payload);
    }
    this.#flush ??= setTimeout(() => this.#dispatch(), C.notifyCoalesceMs);
  }

  #dispatch(): void {
    this.#flush = null;
    const mail = [...this.#pendingMail];
    this.#pendingMail.clear();
    const other = [...this.#pending];
    this.#pending.clear();
    for (const [account, modseq] of mail) {
      if ((this.#dispatched.get(account) ?? -1) >= modseq) continue;
      this.#dispatched.set(account, modseq);
      for (const l of this.#accounts.get(account) ?? []) this.#call(() => l(modseq));
    }
    for (const [channel, payloads] of other)
      for (const p of payloads) for (const l of this.#channels.get(channel) ?? []) this.#call(() => l(p));
    if (this.#overflowed) {
      this.#overflowed = false;
      for (const h of this.#resync) this.#call(() => h());
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#o.log?.warn({ err: errorMessage(e) }, 'cluster: a notification listener failed');
    }
  }
}
