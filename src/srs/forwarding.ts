// SRS as the server uses it (docs/srs.md "What is rewritten"): the envelope sender of a copy we
// forward to another server, and the reversal of our SRS addresses when a bounce comes back.
//
// Who calls it: queue/dispatch.ts rewrites the sender of forwarded remote recipients (aliases and
// catch-alls pointing outside, SRS bounces sent on; Sieve redirect will call forwardSender too);
// smtp/service.ts reverses SRS recipients at RCPT. Not rewritten: the null sender (a bounce is
// never forwarded with a sender) and senders of our own local domains (our SPF authorises us
// for them already). The domain an SRS address is made under is [srs] domain, or else the
// domain of the address that forwarded (the alias's own domain: mail for it reaches us, and its
// SPF names us, since it is one of our domains).

import { parseAddress } from '../core/address.ts';
import type { Logger } from '../core/log.ts';
import { srsAddresses } from '../core/metrics.ts';
import { loadSrsSecrets } from './secret.ts';
import { Srs, SrsError } from './srs.ts';

const DAY_MS = 86_400_000;

/** The envelope sender of a copy forwarded to another server; injectable so the caller need
 *  not know whether SRS is on ([srs] enabled = false: NO_REWRITE). */
export interface SenderRewriter {
  /** The sender to use when mail from `sender` is forwarded by an address of `viaDomain`.
   *  Never throws: a sender that cannot be rewritten is returned as it is. */
  forwardSender(sender: string, viaDomain: string): Promise<string>;
  /** Where a bounce we make for a message sent from `sender` goes: for an SRS sender of ours
   *  (a forwarded copy that failed), the address it stands for; else `sender` itself. */
  bounceAddress(sender: string): Promise<string>;
}

export const NO_REWRITE: SenderRewriter = {
  forwardSender: (sender) => Promise.resolve(sender),
  bounceAddress: (sender) => Promise.resolve(sender),
};

export interface SrsForwardingOptions {
  readonly srs: Srs;
  /** [srs] domain: every SRS address is made under it; null: under the forwarding domain. */
  readonly domain: string | null;
  /** One of our local domains (lower-case punycode, as the directory stores them). */
  readonly isLocalDomain: (domain: string) => Promise<boolean>;
  readonly log: Logger;
}

export class SrsForwarding implements SenderRewriter {
  readonly #srs: Srs;
  readonly #domain: string | null;
  readonly #isLocal: (domain: string) => Promise<boolean>;
  readonly #log: Logger;

  constructor(o: SrsForwardingOptions) {
    this.#srs = o.srs;
    this.#domain = o.domain === null ? null : o.domain.toLowerCase();
    this.#isLocal = o.isLocalDomain;
    this.#log = o.log;
  }

  async forwardSender(sender: string, viaDomain: string): Promise<string> {
    const parsed = sender === '' ? null : parseAddress(sender);
    if (parsed !== null && !(await this.#isLocal(parsed.domain))) {
      try {
        const out = this.#srs.forward(sender, this.#domain ?? viaDomain);
        srsAddresses.inc({ op: 'forward', result: out === sender ? 'unchanged' : 'rewritten' });
        return out;
      } catch (e) {
        if (!(e instanceof SrsError)) throw e;
        // Too long (a local part over 64 octets) or unreadable: forwarded unchanged, as postsrsd does.
        this.#log.warn({ sender, via: viaDomain, srs: e.code }, 'srs: sender not rewritten');
        srsAddresses.inc({ op: 'forward', result: 'failed' });
        return sender;
      }
    }
    // The null sender; a sender that does not parse (it got past MAIL's checks; not ours to fix,
    // sent on as it is); a sender of our own domains.
    srsAddresses.inc({ op: 'forward', result: 'unchanged' });
    return sender;
  }

  async bounceAddress(sender: string): Promise<string> {
    const parsed = parseAddress(sender);
    if (parsed === null || !(await this.isOurs(sender, parsed.domain))) return sender;
    try {
      return this.reverse(sender);
    } catch (e) {
      if (!(e instanceof SrsError)) throw e;
      // Expired (the message stayed queued past max_age) or not ours after all.
      this.#log.warn({ sender, srs: e.code }, 'srs: bounce address not reversed');
      return sender;
    }
  }

  /** Whether `address` is an SRS address at one of our domains or the [srs] domain, i.e. one
   *  we may have made and must reverse at RCPT. `domain`: the address's normalised domain. */
  async isOurs(address: string, domain: string): Promise<boolean> {
    if (!Srs.isSrs(address)) return false;
    return domain === this.#domain || (await this.#isLocal(domain));
  }

  /** The address an SRS address of ours stands for (Srs.reverse; throws SrsError). */
  reverse(address: string): string {
    try {
      const out = this.#srs.reverse(address);
      srsAddresses.inc({ op: 'reverse', result: 'valid' });
      return out;
    } catch (e) {
      if (e instanceof SrsError && e.code !== 'not-srs') {
        const result = e.code === 'forged' || e.code === 'expired' ? e.code : 'malformed';
        srsAddresses.inc({ op: 'reverse', result });
      }
      throw e;
    }
  }
}

/** The [srs] section as this module reads it (config/srs.ts). */
export interface SrsSettings {
  readonly enabled: boolean;
  /** '' for the forwarding domain. */
  readonly domain: string;
  readonly max_age: number;
}

/** SRS as configured, with the secrets of {stateDir}/srs.secret (created on first use); null
 *  when [srs] enabled = false. Every thread that forwards or reverses builds its own. */
export async function openSrsForwarding(
  settings: SrsSettings,
  stateDir: string,
  isLocalDomain: (domain: string) => Promise<boolean>,
  log: Logger,
): Promise<SrsForwarding | null> {
  if (!settings.enabled) return null;
  const srs = new Srs({ secrets: await loadSrsSecrets(stateDir), maxAgeDays: Math.round(settings.max_age / DAY_MS) });
  return new SrsForwarding({ srs, domain: settings.domain === '' ? null : settings.domain, isLocalDomain, log });
}
