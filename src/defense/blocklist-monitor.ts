// Blocklist monitoring (docs/spam.md "Blocklist monitoring"): every [monitor] interval (plus or
// minus 10%, the first round shortly after start) each of our outbound addresses ([server]
// public_addresses, else the A/AAAA of the host name) is looked up in every zone of [monitor]
// dnsbl (RFC 5782 through hygiene/dnsbl.ts queryDnsbl, no cache).
// Invariants:
// - arcline_blocklist_listed{zone,address} is 1 while listed, 0 once seen clear; a failed
//   look-up changes nothing (neither the gauge nor what is remembered): a DNS outage is not a
//   delisting, and its end is not a new listing;
// - a listing is told once: logged (warn) and sent to the postmaster (`notify`); it is
//   remembered in a BlocklistState (blocklist-state.ts: {state}/blocklist.json on one node, the
//   table blocklist_listed in a cluster), so neither a restart nor a takeover by another node
//   tells again; if the notice cannot be queued, it is not remembered and the next round tries
//   again;
// - a delisting is logged (info) and forgotten, so a later listing is new again;
// - rounds never overlap; stop() waits for the one in flight; timers are unref'd;
// - one node: start() keeps the schedule with a timer; a cluster: blocklistLeaderTask() runs it
//   as the leader task `blocklist` (db/leader.ts), which reads the state again at each takeover.

import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { blocklistListed } from '../core/metrics.ts';
import type { LeaderTask } from '../db/leader.ts';
import { type DnsblResolver, queryDnsbl } from '../hygiene/dnsbl.ts';
import { type BlocklistState, FileBlocklistState, type Listing } from './blocklist-state.ts';

export type { Listing } from './blocklist-state.ts';

export interface BlocklistMonitorOptions {
  readonly zones: readonly string[];
  /** Our outbound addresses, asked at every round (dns/addresses.ts publicAddresses). */
  readonly addresses: () => Promise<readonly string[]>;
  readonly resolver: DnsblResolver;
  readonly intervalMs: number;
  /** {state}/blocklist.json, when no `state` is given (one node). */
  readonly stateFile?: string;
  /** Where the reported listings are remembered (openBlocklistState); default: `stateFile`. */
  readonly state?: BlocklistState;
  /** Tells the postmaster of a new listing; resolves once the message is durable. */
  readonly notify: (l: Listing) => Promise<void>;
  readonly log: Logger;
  readonly random?: () => number;
}

const key = (zone: string, address: string) => `${zone} ${address}`;

export class BlocklistMonitor {
  readonly #o: BlocklistMonitorOptions;
  readonly #zones: readonly string[];
  readonly #random: () => number;
  readonly #state: BlocklistState;
  #listed = new Map<string, Listing>();
  #loaded = false;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #round = 0;

  constructor(o: BlocklistMonitorOptions) {
    this.#o = o;
    this.#zones = [...new Set(o.zones.map((z) => z.toLowerCase().replace(/\.+$/, '')))];
    this.#random = o.random ?? Math.random;
    const file = o.stateFile;
    if (o.state) this.#state = o.state;
    else if (file) this.#state = new FileBlocklistState(file, (m) => o.log.warn({ file, err: m }, 'blocklist state'));
    else throw new Error('BlocklistMonitor: a state or a stateFile is needed');
  }

  /** Reads the remembered listings again (at start, and when this node takes the task over:
   *  what the previous leader told is in the shared state). */
  async reload(): Promise<void> {
    const listed = await this.#state.load();
    this.#listed = new Map(listed.map((l) => [key(l.zone, l.address), l]));
    this.#loaded = true;
    // What we knew before, until the first round says otherwise.
    for (const l of listed) blocklistListed.set({ zone: l.zone, address: l.address }, 1);
  }

  /** The schedule as a leader task's run: the state read again, the first round after the
   *  start delay, then one every interval (jittered) until `signal` fires; a round in flight
   *  then ends (its look-ups are bounded) before this returns. */
  async runAsLeader(signal: AbortSignal): Promise<void> {
    if (this.#zones.length === 0) return;
    await this.reload();
    let wait = Math.min(LIMITS.monitor.firstRunDelayMs, this.#o.intervalMs);
    while (!signal.aborted && !this.#stopped) {
      await delay(this.#jittered(wait), undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      await this.round().catch((e: unknown) => this.#o.log.error({ err: errorMessage(e) }, 'blocklist round failed'));
      wait = this.#o.intervalMs;
    }
  }

  #jittered(baseMs: number): number {
    const j = LIMITS.monitor.jitter;
    return Math.max(0, Math.round(baseMs * (1 - j + 2 * j * this.#random())));
  }

  start(): void {
    if (this.#zones.length === 0) return;
    this.#schedule(Math.min(LIMITS.monitor.firstRunDelayMs, this.#o.intervalMs));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #schedule(baseMs: number): void {
    if (this.#stopped) return;
    const ms = this.#jittered(baseMs);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.round()
        .catch((e: unknown) => this.#o.log.error({ err: errorMessage(e) }, 'blocklist round failed'))
        .finally(() => {
          this.#running = null;
          this.#schedule(this.#o.intervalMs);
        });
    }, ms);
    this.#timer.unref();
  }

  /** One round over every address and zone. */
  async round(): Promise<void> {
    const round = ++this.#round;
    const { log } = this.#o;
    if (!this.#loaded) await this.reload();
    const addresses = await this.#o.addresses();
    const added: Listing[] = [];
    const removed: Listing[] = [];
    let listed = 0;
    let errors = 0;
    const checks = addresses.flatMap((address) => this.#zones.map((zone) => ({ address, zone })));
    const answers = await Promise.all(
      checks.map(async (c) => ({
        ...c,
        a: await queryDnsbl(this.#o.resolver, c.address, c.zone, LIMITS.check.dnsblTimeoutMs),
      })),
    );
    for (const { address, zone, a } of answers) {
      const k = key(zone, address);
      const known = this.#listed.get(k);
      if (a.kind === 'error') {
        errors++;
        log.debug({ zone, address, err: a.error }, 'blocklist look-up failed');
        continue;
      }
      if (a.kind === 'clear') {
        blocklistListed.set({ zone, address }, 0);
        if (known) {
          this.#listed.delete(k);
          removed.push(known);
          log.info({ zone, address, since: known.since }, 'blocklist delisting');
        }
        continue;
      }
      listed++;
      blocklistListed.set({ zone, address }, 1);
      if (known) continue;
      const l: Listing = {
        zone,
        address,
        codes: a.listing.codes,
        reason: a.listing.reason,
        since: new Date().toISOString(),
      };
      log.warn({ zone, address, codes: l.codes.join(','), reason: l.reason }, 'blocklist listing');
      try {
        await this.#o.notify(l);
      } catch (e) {
        log.error({ zone, address, err: errorMessage(e) }, 'blocklist notice failed; trying again next round');
        continue;
      }
      if (this.#listed.size < LIMITS.monitor.maxRemembered) {
        this.#listed.set(k, l);
        added.push(l);
      }
    }
    if (added.length > 0 || removed.length > 0) await this.#state.update(added, removed);
    log.debug({ round, addresses: addresses.length, zones: this.#zones.length, listed, errors }, 'blocklist round');
  }
}

/** The blocklist monitor as the leader task `blocklist` (docs/cluster.md "Leader tasks"): built
 *  on the shared state (openBlocklistState with the pool), and not start()ed. */
export function blocklistLeaderTask(monitor: Pick<BlocklistMonitor, 'runAsLeader'>): LeaderTask {
  return { name: 'blocklist', run: (signal) => monitor.runAsLeader(signal) };
}

/** The message to the postmaster about a new listing (RFC 5322, CRLF), from MAILER-DAEMON. */
export function listingNotice(opts: { hostname: string; to: string; listing: Listing; date?: Date }): Buffer {
  const { hostname, to, listing: l } = opts;
  const date = opts.date ?? new Date();
  const clean = (s: string) => s.replace(/[^\x20-\x7e]/g, ' ');
  const body = [
    `Our outbound address ${l.address} is listed on the DNS blocklist ${l.zone}`,
    `(return codes ${l.codes.join(', ')}), seen ${l.since} by ${hostname}.`,
    '',
    l.reason ? `The list says: ${clean(l.reason)}` : 'The list gives no reason.',
    '',
    'Receivers that use this list may refuse or junk mail from this server. Find the cause',
    '(an open relay, a leaked password, a compromised account: see the queue and the',
    'submission log), fix it, then ask the list for delisting.',
    '',
    '`arcline check` shows every listing of our addresses. You are told once per listing;',
    'the delisting is logged.',
  ];
  const head = [
    `From: Mail Delivery System <MAILER-DAEMON@${hostname}>`,
    `To: <${clean(to)}>`,
    `Subject: ${l.address} is listed on ${l.zone}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
  ];
  return Buffer.from(`${[...head, '', ...body].join('\r\n')}\r\n`);
}
