// The IP allow and deny lists and the bans as every listener sees them (docs/spam.md): one
// in-memory view per thread, built from the DefenseStore (store.ts: defense.db; or the shared
// PostgreSQL, store-postgres.ts) and rebuilt when another connection commits a change (the CLI,
// the admin API, a ban written by the main thread, seen by the inbound SMTP threads; another
// node), which the store's version (PRAGMA data_version, a counter row on PostgreSQL) tells at
// the cost of one tiny query per poll. A verdict is two BlockList look-ups and one Map look-up:
// no I/O per connection, which is why the view is a cache rather than a query per connection:
// accept must answer at once, and the store may be a network round trip away. Open it with
// AccessView.open (the first load awaited: a deny list must hold from the first connection).
//
// Precedence: the allow list wins over the deny list and over bans (an operator who allows
// their office inside a denied range, or their home address after a ban, is obeyed at once).

import { banNetwork, NetworkSet, parseNetwork } from './networks.ts';
import type { BanEntry, DefenseStore } from './store.ts';
import type { AccessVerdict, NetworkAccess } from './types.ts';

export interface AccessViewOptions {
  /** Poll period of the store's version (ms). */
  readonly pollMs: number;
  readonly now?: () => number;
  /** A poll that failed (the database unreachable): the last view stays in force. */
  readonly onError?: (e: unknown) => void;
}

const OPEN: AccessVerdict = { kind: 'open' };
const ALLOW: AccessVerdict = { kind: 'allow' };
const DENY: AccessVerdict = { kind: 'deny' };

export class AccessView implements NetworkAccess {
  readonly #store: Pick<DefenseStore, 'version' | 'networks' | 'bans'>;
  readonly #now: () => number;
  readonly #pollMs: number;
  #allow = new NetworkSet([]);
  #deny = new NetworkSet([]);
  /** Banned network (canonical CIDR) -> its ban. */
  #bans = new Map<string, { until: number; offence: string }>();
  #version = -1;
  #timer: NodeJS.Timeout | null = null;
  #refreshing: Promise<void> | null = null;
  readonly #onError: (e: unknown) => void;

  /** Empty until the first refresh: use AccessView.open. */
  private constructor(store: Pick<DefenseStore, 'version' | 'networks' | 'bans'>, opts: AccessViewOptions) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#pollMs = opts.pollMs;
    this.#onError = opts.onError ?? (() => {});
  }

  /** A view loaded from `store` (not polling yet: start()). */
  static async open(
    store: Pick<DefenseStore, 'version' | 'networks' | 'bans'>,
    opts: AccessViewOptions,
  ): Promise<AccessView> {
    const v = new AccessView(store, opts);
    await v.refresh(true);
    return v;
  }

  /** Polls for changes until stop(); a poll never overlaps the one before. */
  start(): this {
    this.#timer ??= setInterval(() => {
      if (!this.#refreshing) this.refresh().catch(this.#onError);
    }, this.#pollMs).unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Re-reads the lists and bans when another connection changed them (or `force`). */
  async refresh(force = false): Promise<void> {
    const run = this.#load(force);
    this.#refreshing = run;
    try {
      await run;
    } finally {
      if (this.#refreshing === run) this.#refreshing = null;
    }
  }

  async #load(force: boolean): Promise<void> {
    // Bans this thread wrote (committed) while the rows were read may be missing from them.
    const during = new Map<string, { until: number; offence: string }>();
    this.#during = during;
    const v = await this.#store.version();
    if (!force && v === this.#version) {
      this.#during = null;
      return;
    }
    const [entries, bans] = await Promise.all([this.#store.networks(), this.#store.bans(this.#now())]);
    const nets = (list: string) => entries.filter((e) => e.list === list).flatMap((e) => parseNetwork(e.cidr) ?? []);
    this.#allow = new NetworkSet(nets('allow'));
    this.#deny = new NetworkSet(nets('deny'));
    this.#during = null;
    this.#bans = new Map(bans.map((b) => [b.network, { until: b.expires, offence: b.offence }]));
    for (const [net, b] of during) this.#bans.set(net, b);
    // The version read before the rows: a change committed in between is loaded again next poll.
    this.#version = v;
  }

  /** Bans written by this thread while a load runs. */
  #during: Map<string, { until: number; offence: string }> | null = null;

  /** A ban this thread wrote itself, once committed (its own commits do not change
   *  data_version; a load running may have read the rows before it). */
  banned(b: BanEntry): void {
    const entry = { until: b.expires, offence: b.offence };
    this.#bans.set(b.network, entry);
    this.#during?.set(b.network, entry);
  }

  verdict(ip: string): AccessVerdict {
    if (this.#allow.has(ip)) return ALLOW;
    if (this.#deny.has(ip)) return DENY;
    if (this.#bans.size > 0) {
      const net = banNetwork(ip);
      const ban = net ? this.#bans.get(net.cidr) : undefined;
      if (ban) {
        if (ban.until > this.#now()) return { kind: 'banned', until: ban.until, offence: ban.offence };
        if (net) this.#bans.delete(net.cidr);
      }
    }
    return OPEN;
  }

  isAllowed(ip: string): boolean {
    return this.#allow.has(ip);
  }
}
