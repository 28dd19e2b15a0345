// The IP allow and deny lists and the bans as every listener sees them (docs/spam.md): one
// in-memory view per thread, built from defense.db (store.ts) and rebuilt when another
// connection commits a change (the CLI, the admin API, a ban written by the main thread, seen
// by the inbound SMTP threads), which PRAGMA data_version tells at the cost of one tiny query
// per poll. A verdict is two BlockList look-ups and one Map look-up: no I/O per connection.
//
// Precedence: the allow list wins over the deny list and over bans (an operator who allows
// their office inside a denied range, or their home address after a ban, is obeyed at once).

import { banNetwork, NetworkSet, parseNetwork } from './networks.ts';
import type { BanEntry, DefenseStore } from './store.ts';
import type { AccessVerdict, NetworkAccess } from './types.ts';

export interface AccessViewOptions {
  /** Poll period of PRAGMA data_version (ms). */
  readonly pollMs: number;
  readonly now?: () => number;
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

  constructor(store: Pick<DefenseStore, 'version' | 'networks' | 'bans'>, opts: AccessViewOptions) {
    this.#store = store;
    this.#now = opts.now ?? Date.now;
    this.#pollMs = opts.pollMs;
    this.refresh();
  }

  /** Polls for changes until stop(). */
  start(): this {
    this.#timer ??= setInterval(() => this.refresh(), this.#pollMs).unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Re-reads the lists and bans when another connection changed them (or `force`). */
  refresh(force = false): void {
    const v = this.#store.version();
    if (!force && v === this.#version) return;
    this.#version = v;
    const entries = this.#store.networks();
    const nets = (list: string) => entries.filter((e) => e.list === list).flatMap((e) => parseNetwork(e.cidr) ?? []);
    this.#allow = new NetworkSet(nets('allow'));
    this.#deny = new NetworkSet(nets('deny'));
    this.#bans = new Map(
      this.#store.bans(this.#now()).map((b) => [b.network, { until: b.expires, offence: b.offence }]),
    );
  }

  /** A ban this thread wrote itself (its own commits do not change data_version). */
  banned(b: BanEntry): void {
    this.#bans.set(b.network, { until: b.expires, offence: b.offence });
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
