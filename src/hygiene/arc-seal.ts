// ARC sealing of the copies we forward (RFC 8617 §5.1): an alias pointing outside, a Sieve
// redirect. The Dispatcher (queue/dispatch.ts) calls seal() with the exact bytes that will be
// queued (our trace fields on top of the message as stored) and puts the three fields it
// returns above them, so the set covers the final bytes: SRS rewrites only the envelope, and
// nothing is added to a queued message after this.
//
// The set (RFC 8617 §4.1): ARC-Authentication-Results with the results WE recorded at inbound
// (InboundArc.authResults, held in memory since then, never read from the message), an
// ARC-Message-Signature and an ARC-Seal with cv= as our inbound validation said (arc.ts); the
// instance is one above the highest on the message (mailauth's createSeal: §5.1 step 3, and it
// refuses a chain whose newest seal says cv=fail, §5.1 step 2).
//
// The key: an RSA DKIM key (hygiene/dkim-keys.ts) of the forwarding domain (the alias's or the
// redirecting user's), else of our host name, else of its parent domain. RSA only: RFC 8617
// defines ARC with rsa-sha256, and verifiers reject other algorithms (python3-dkim: "unknown
// signature algorithm: ed25519-sha256"), so an Ed25519 key is passed over. No RSA key: the
// copy leaves unsealed (logged once per domain).
// A signing failure never holds mail back: the copy leaves unsealed and the error is logged.

import type { Readable } from 'node:stream';
import { createSeal } from 'mailauth';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { InboundArc } from './arc.ts';
import type { DkimKey, DkimKeys } from './dkim-keys.ts';

/** Seals a forwarded copy; implemented by ArcSealer, injected into the Dispatcher. */
export interface ForwardSealer {
  /** The ARC set (CRLF-terminated fields, to go on top of `message`), or '' when none is made. */
  seal(domain: string, arc: InboundArc, message: Readable): Promise<string>;
}

export class ArcSealer implements ForwardSealer {
  readonly #keys: Pick<DkimKeys, 'keys'>;
  readonly #hostname: string;
  readonly #log: Logger;
  readonly #warned = new Set<string>();

  constructor(keys: Pick<DkimKeys, 'keys'>, hostname: string, log: Logger) {
    this.#keys = keys;
    this.#hostname = hostname.toLowerCase();
    this.#log = log;
  }

  async seal(domain: string, arc: InboundArc, message: Readable): Promise<string> {
    if (arc.cv === null) {
      message.destroy();
      return ''; // RFC 8617 §5.1 step 2: the chain failed before us and was sealed so
    }
    const key = await this.#keyFor(domain);
    if (!key) {
      message.destroy();
      return '';
    }
    try {
      const res = await createSeal(message, {
        seal: {
          signingDomain: key.domain,
          selector: key.selector,
          privateKey: key.privateKeyPem,
          algorithm: 'rsa-sha256',
          cv: arc.cv,
          authResults: arc.authResults,
          signTime: new Date(),
        },
      });
      if (res.headers.length === 0) {
        const why = res.errors.map((e) => errorMessage(e.err)).join('; ');
        this.#log.warn({ domain: key.domain, err: why }, 'ARC: forwarded copy not sealed');
        return '';
      }
      this.#log.debug({ domain: key.domain, selector: key.selector, cv: arc.cv }, 'ARC: forwarded copy sealed');
      return `${res.headers.join('\r\n')}\r\n`;
    } catch (e) {
      message.destroy();
      this.#log.error({ domain: key.domain, err: errorMessage(e) }, 'ARC: sealing failed, copy sent unsealed');
      return '';
    }
  }

  /** The RSA key that seals for `domain`: its own, else the host name's, else its parent's. */
  async #keyFor(domain: string): Promise<DkimKey | null> {
    const candidates = [domain.toLowerCase(), this.#hostname, this.#hostname.slice(this.#hostname.indexOf('.') + 1)];
    for (const d of new Set(candidates)) {
      if (!d.includes('.')) continue;
      const keys = await this.#keys.keys(d).catch((e: unknown) => {
        this.#log.error({ domain: d, err: errorMessage(e) }, 'ARC: reading the DKIM keys failed');
        return [];
      });
      const key = keys.find((k) => k.algorithm === 'rsa');
      if (key) return key;
    }
    if (!this.#warned.has(domain)) {
      this.#warned.add(domain);
      this.#log.warn({ domain }, 'ARC: no RSA DKIM key for this domain or our host name: forwarded mail is not sealed');
    }
    return null;
  }
}
