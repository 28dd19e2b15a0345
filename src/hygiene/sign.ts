// DKIM signing of mail sent through submission (RFC 6376; Ed25519 per RFC 8463): every key of
// the author's (From:) domain signs, so a domain with an RSA and an Ed25519 key sends both
// signatures (receivers that do not know Ed25519 ignore that one, RFC 8463 §6). The signature
// covers the exact bytes that leave: the headers we add at submission plus the message as
// stored, after line-ending normalisation; relaxed/relaxed canonicalization.

import type { Readable } from 'node:stream';
import { dkimSign } from 'mailauth';
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { DkimKeys } from './dkim-keys.ts';

export class DkimSigner {
  readonly #keys: DkimKeys;
  readonly #log: Logger;
  readonly #warned = new Set<string>();

  constructor(keys: DkimKeys, log: Logger) {
    this.#keys = keys;
    this.#log = log;
  }

  /** DKIM-Signature fields (CRLF-terminated) for a message from `domain`; '' without a key. */
  async sign(domain: string, message: Readable): Promise<string> {
    const keys = await this.#keys.keys(domain);
    if (keys.length === 0) {
      message.destroy();
      if (!this.#warned.has(domain)) {
        this.#warned.add(domain);
        this.#log.warn({ domain }, 'no DKIM key for this domain: mail is sent unsigned (arcline dkim keygen)');
      }
      return '';
    }
    const res = await dkimSign(message, {
      signingDomain: domain,
      selector: keys[0]?.selector ?? '',
      privateKey: keys[0]?.privateKeyPem ?? '',
      canonicalization: 'relaxed/relaxed',
      signatureData: keys.map((k) => ({
        signingDomain: k.domain,
        selector: k.selector,
        privateKey: k.privateKeyPem,
        algorithm: k.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256',
        canonicalization: 'relaxed/relaxed',
      })),
    });
    for (const err of res.errors ?? []) {
      this.#log.error({ domain, err: errorMessage(err) }, 'DKIM signing failed for one key');
    }
    return res.signatures;
  }
}
