// The SASL exchange of SMTP AUTH (RFC 4954 §4) for PLAIN (RFC 4616) and LOGIN, as a pure state
// machine: the connection feeds it the initial response or each client line and gets back a
// challenge to send, the credentials to check, or a refusal. Bounded by the line framer (a
// line is at most LIMITS.smtp.maxCommandLength) and by its two steps at most.

import { decodePlain } from '../../auth/sasl.ts';

export type SaslMechanism = 'PLAIN' | 'LOGIN';

export type SaslStep =
  /** Send `334 <text>` and feed the client's next line. */
  | { readonly kind: 'challenge'; readonly text: string }
  | { readonly kind: 'credentials'; readonly username: string; readonly password: string }
  /** End the exchange with this reply (501: canceled or undecodable). */
  | { readonly kind: 'refuse'; readonly code: number; readonly enhanced: string; readonly text: string };

const B64 = /^[A-Za-z0-9+/]*={0,2}$/; // linear: one class, anchored

export class SaslExchange {
  readonly mechanism: SaslMechanism;
  #username: string | null = null;

  constructor(mechanism: SaslMechanism) {
    this.mechanism = mechanism;
  }

  /** The first step: the initial response of the AUTH command ("=" is an empty one), or none. */
  start(initial: string | null): SaslStep {
    return initial === null ? this.#challenge() : this.step(initial === '=' ? '' : initial);
  }

  /** A line the client sent in answer to a challenge. */
  step(line: string): SaslStep {
    // RFC 4954 §4: "*" cancels the exchange.
    if (line === '*') return { kind: 'refuse', code: 501, enhanced: '5.7.0', text: 'Authentication canceled' };
    if (!B64.test(line)) return undecodable();
    if (this.mechanism === 'PLAIN') {
      const plain = decodePlain(line);
      return plain === null ? undecodable() : { kind: 'credentials', username: plain.user, password: plain.password };
    }
    const text = Buffer.from(line, 'base64').toString('utf8');
    if (this.#username === null) {
      this.#username = text;
      return this.#challenge();
    }
    return { kind: 'credentials', username: this.#username, password: text };
  }

  /** RFC 4616 (PLAIN): an empty challenge; LOGIN asks for "Username:" then "Password:". */
  #challenge(): SaslStep {
    const text = this.mechanism === 'PLAIN' ? '' : this.#username === null ? 'VXNlcm5hbWU6' : 'UGFzc3dvcmQ6';
    return { kind: 'challenge', text };
  }
}

function undecodable(): SaslStep {
  return { kind: 'refuse', code: 501, enhanced: '5.5.2', text: 'Cannot decode the response' };
}
