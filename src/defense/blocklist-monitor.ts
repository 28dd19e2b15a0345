// Blocklist monitoring (docs/spam.md "Blocklist monitoring"): every [monitor] interval (plus or
// minus 10%, the first round shortly after start) each of our outbound addresses ([server]
// public_addresses, else the A/AAAA of the host name) is looked up in every zone of [monitor]
// dnsbl (RFC 5782 through hygiene/dnsbl.ts queryDnsbl, no cache).
// Invariants:
// - arcline_blocklist_listed{zone,address} is 1 while listed, 0 once seen clear; a failed
//   look-up changes nothing (neither the gauge nor what is remembered): a DNS outage is not a
//   delisting, and its end is not a new listing;
// - a listing is told once: logged (warn) and sent to the postmaster (`notify`); it is
//   remembered in {state}/blocklist.json (replaced atomically), so a restart does not tell again;
//   if the notice cannot be queued, it is not remembered and the next round tries again;
// - a delisting is logged (info) and forgotten, so a later listing is new again;
// - rounds never overlap; stop() waits for the one in flight; timers are unref'd.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { blocklistListed } from '../core/metrics.ts';
import { writePrivateFileAtomic } from '../core/private-files.ts';
import { type DnsblResolver, queryDnsbl } from '../hygiene/dnsbl.ts';

export interface Listing {
  readonly zone: string;
  readonly address: string;
  readonly codes: readonly string[];
  readonly reason: string | null;
  /** When we first saw it (ISO 8601). */
  readonly since: string;
}

export interface BlocklistMonitorOptions {
  readonly zones: readonly string[];
  /** Our outbound addresses, asked at every round (dns/addresses.ts publicAddresses). */
  readonly addresses: () => Promise<readonly string[]>;
  readonly resolver: DnsblResolver;
  readonly intervalMs: number;
  /** {state}/blocklist.json */
  readonly stateFile: string;
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
  #listed = new Map<string, Listing>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #round = 0;

  constructor(o: BlocklistMonitorOptions) {
    this.#o = o;
    this.#zones = [...new Set(o.zones.map((z) => z.toLowerCase().replace(/\.+$/, '')))];
    this.#random = o.random ?? Math.random;
    this.#listed = load(o.stateFile, o.log);
    // What we knew before the restart, until the first round says otherwise.
    for (const l of this.#listed.values()) blocklistListed.set({ zone: l.zone, address: l.address }, 1);
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
    const j = LIMITS.monitor.jitter;
    const ms = Math.max(0, Math.round(baseMs * (1 - j + 2 * j * this.#random())));
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
    const addresses = await this.#o.addresses();
    let changed = false;
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
          changed = true;
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
        changed = true;
      }
    }
    if (changed) await this.#save();
    log.debug({ round, addresses: addresses.length, zones: this.#zones.length, listed, errors }, 'blocklist round');
  }

  async #save(): Promise<void> {
    const data = { version: 1, listed: [...this.#listed.values()] };
    await writePrivateFileAtomic(this.#o.stateFile, `${JSON.stringify(data, null, 2)}\n`);
  }
}

function load(file: string, log: Logger): Map<string, Listing> {
  const m = new Map<string, Listing>();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
      log.warn({ file, err: errorMessage(e) }, 'cannot read blocklist state');
    return m;
  }
  try {
    const data = JSON.parse(text) as { listed?: unknown };
    for (const l of Array.isArray(data.listed) ? data.listed.slice(0, LIMITS.monitor.maxRemembered) : []) {
      const x = l as Listing;
      if (typeof x?.zone === 'string' && typeof x.address === 'string' && typeof x.since === 'string') {
        m.set(key(x.zone, x.address), {
          zone: x.zone,
          address: x.address,
          codes: Array.isArray(x.codes) ? x.codes.map(String) : [],
          reason: typeof x.reason === 'string' ? x.reason : null,
          since: x.since,
        });
      }
    }
  } catch (e) {
    log.warn({ file, err: errorMessage(e) }, 'blocklist state unreadable; starting afresh');
  }
  return m;
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
