// The SASL exchange for PLAIN (RFC 4616) and LOGIN, as a pure state machine shared by SMTP AUTH
// (RFC 4954 §4) and ManageSieve AUTHENTICATE (RFC 5804 §2.1): the connection feeds it the initial
// response or each client response and gets back a challenge to send, the credentials to check,
// or a refusal, which each protocol words its own way. Bounded by the protocol's line framer
// and by its two steps at most.

import { decodePlain } from './sasl.ts';

export type SaslMechanism = 'PLAIN' | 'LOGIN';

export type SaslStep =
  /** Send the challenge (base64; SMTP `334 <text>`) and feed the client's next response. */
  | { readonly kind: 'challenge'; readonly text: string }
  | { readonly kind: 'credentials'; readonly username: string; readonly password: string }
  /** End the exchange: the client canceled it ("*") or its response cannot be decoded. */
  | { readonly kind: 'refuse'; readonly reason: 'canceled' | 'undecodable' };

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
    // RFC 4954 §4, RFC 5804 §2.1: "*" cancels the exchange.
    if (line === '*') return { kind: 'refuse', reason: 'canceled' };
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
  return { kind: 'refuse', reason: 'undecodable' };
}
