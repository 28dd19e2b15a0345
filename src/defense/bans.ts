// Auto-ban (docs/spam.md "Auto-ban"): a client network that keeps failing logins, abusing the
// protocol or probing for unknown recipients is refused at connection for a while, the period
// doubling with each ban while earlier ones are remembered ([ban]).
//
// Owners are never locked out (the lesson of Stalwart #2441, whose auto-ban shut out its
// operator's home address): a network on the allow list, in a trusted network, or from which an
// owner logged in within known_client_age is never banned, nor 127.0.0.1 and ::1 (local tools,
// a webmail on the same host); its offences are logged once and forgotten. The login throttle (auth/throttle.ts) still slows guessing from such a network.
// What a ban covers: the IPv4 address, or the IPv6 /64 (networks.ts banNetwork).
//
// Offences are counted in memory by the main thread (the inbound SMTP threads send theirs over),
// at most LIMITS.defense.maxOffenceEntries networks, least recently seen dropped first; a
// network's count starts over `window` after its first offence. Bans are written to the
// DefenseStore (defense.db, or the shared PostgreSQL of a cluster), where every thread, process
// and node sees them (access.ts); this thread applies its own at once, once written. The
// decision to ban is taken synchronously (the count reset before any await), so a burst of
// offences bans once; the exemption look-up and the write are async (offence() returns the ban's
// promise; protocol code, which only reports, does not wait for it).

import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import { bansTotal } from '../core/metrics.ts';
import type { AccessView } from './access.ts';
import { banNetwork } from './networks.ts';
import type { BanEntry, DefenseStore } from './store.ts';
import type { Offence, OffenceSink } from './types.ts';

export interface BanSettings {
  readonly enabled: boolean;
  readonly windowMs: number;
  readonly thresholds: Readonly<Record<Offence, number>>;
  readonly firstMs: number;
  readonly maxMs: number;
  readonly memoryMs: number;
  readonly knownClientMs: number;
}

export interface BanPolicyDeps {
  readonly store: Pick<DefenseStore, 'ban' | 'knownClient' | 'lastLogin' | 'sweep'>;
  readonly view: Pick<AccessView, 'banned' | 'isAllowed'>;
  readonly settings: BanSettings;
  /** Trusted networks ([hygiene] and [auth] trusted_networks): never banned. */
  readonly trusted: (ip: string) => boolean;
  readonly log: Logger;
  readonly now?: () => number;
}

interface Count {
  first: number;
  auth: number;
  protocol: number;
  'unknown-recipient': number;
}

const WHAT: Record<Offence, string> = {
  auth: 'failed logins',
  protocol: 'sessions ended for protocol errors',
  'unknown-recipient': 'unknown recipients',
};

export class BanPolicy implements OffenceSink {
  readonly #d: BanPolicyDeps;
  readonly #now: () => number;
  readonly #counts = new LruMap<string, Count>(LIMITS.defense.maxOffenceEntries);
  /** Network -> when this process last wrote its owner login (one write an hour at most). */
  readonly #logins = new LruMap<string, number>(LIMITS.defense.maxOffenceEntries);
  #sweep: NodeJS.Timeout | null = null;

  constructor(deps: BanPolicyDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Sweeps forgotten bans and old logins now and then until stop(). The server runs sweep()
   *  itself instead (server-cluster.ts: on one node of a cluster, the leader task ban-sweep). */
  start(): this {
    const sweep = () => void this.sweep();
    sweep();
    this.#sweep ??= setInterval(sweep, LIMITS.defense.sweepMs).unref();
    return this;
  }

  stop(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  /** Forgets bans past their memory and owner logins past knownClientMs; a failure is logged. */
  async sweep(): Promise<void> {
    const now = this.#now();
    await this.#d.store
      .sweep(now, now - this.#d.settings.knownClientMs)
      .then(() => {})
      .catch((e: unknown) => this.#d.log.warn({ err: errorMessage(e) }, 'defense sweep failed'));
  }

  /** Counts an offence; the ban it led to (written and applied), or null. Never rejects: a
   *  store failure is logged. */
  async offence(ip: string, kind: Offence): Promise<BanEntry | null> {
    const s = this.#d.settings;
    if (!s.enabled) return null;
    const net = banNetwork(ip);
    if (!net) return null;
    const now = this.#now();
    let c = this.#counts.get(net.cidr);
    if (!c || now - c.first > s.windowMs) {
      c = { first: now, auth: 0, protocol: 0, 'unknown-recipient': 0 };
      this.#counts.set(net.cidr, c);
    }
    c[kind]++;
    if (c[kind] < s.thresholds[kind]) return null;
    this.#counts.delete(net.cidr);
    const detail = `${c[kind]} ${WHAT[kind]} in ${Math.max(1, Math.round((now - c.first) / 1000))} s`;
    let entry: BanEntry;
    try {
      const exempt = await this.#exemption(ip, net.cidr, now);
      if (exempt) {
        this.#d.log.warn({ ip, network: net.cidr, offence: kind, detail, exempt }, 'client not banned: exempt');
        return null;
      }
      entry = await this.#d.store.ban(
        net.cidr,
        kind,
        detail,
        (level) => Math.min(s.maxMs, s.firstMs * 2 ** Math.min(level - 1, 40)),
        s.memoryMs,
        now,
      );
    } catch (e) {
      this.#d.log.warn(
        { ip, network: net.cidr, offence: kind, err: errorMessage(e) },
        'client not banned: store failed',
      );
      return null;
    }
    this.#d.view.banned(entry);
    bansTotal.inc({ offence: kind });
    this.#d.log.warn(
      {
        ip,
        network: net.cidr,
        offence: kind,
        detail,
        level: entry.level,
        until: new Date(entry.expires).toISOString(),
      },
      'client banned',
    );
    return entry;
  }

  /** An owner logged in from `ip`: its network is never banned for known_client_age. Resolves
   *  once written (never rejects: a failure is logged); callers need not wait. */
  async loggedIn(ip: string): Promise<void> {
    const net = banNetwork(ip);
    if (!net) return;
    const now = this.#now();
    const last = this.#logins.get(net.cidr);
    if (last !== undefined && now - last < LIMITS.defense.loginWriteMs) return;
    this.#logins.set(net.cidr, now);
    await this.#d.store
      .knownClient(net.cidr, now)
      .catch((e: unknown) => this.#d.log.warn({ err: errorMessage(e) }, 'owner login not recorded'));
  }

  /** Why the network of `ip` may not be banned, or null. */
  async #exemption(ip: string, network: string, now: number): Promise<string | null> {
    if (ip === '127.0.0.1' || ip === '::1') return 'local tools connect from it';
    if (this.#d.view.isAllowed(ip)) return 'allow list';
    if (this.#d.trusted(ip)) return 'trusted network';
    if ((await this.#d.store.lastLogin(network)) > now - this.#d.settings.knownClientMs)
      return 'an owner logged in from it';
    return null;
  }
}

/** [ban] of the configuration as BanSettings. */
export function banSettings(b: {
  enabled: boolean;
  window: number;
  auth_failures: number;
  protocol_errors: number;
  unknown_recipients: number;
  first_duration: number;
  max_duration: number;
  memory: number;
  known_client_age: number;
}): BanSettings {
  return {
    enabled: b.enabled,
    windowMs: b.window,
    thresholds: { auth: b.auth_failures, protocol: b.protocol_errors, 'unknown-recipient': b.unknown_recipients },
    firstMs: b.first_duration,
    maxMs: b.max_duration,
    memoryMs: b.memory,
    knownClientMs: b.known_client_age,
  };
}
