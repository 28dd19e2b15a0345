// Detects bare CR and bare LF in a DATA stream (RFC 5321 §2.3.8). Pure and incremental: feed
// chunks as they arrive, split anywhere; state carries the last byte across chunk boundaries.
// Our DATA reader (wire/data.ts) only ends DATA at CRLF.CRLF, and keeps bare LF/CR as received,
// so rejecting any message that contains one closes every SMTP smuggling variant (`\n.\n`, `\r.\r`, `\n.\r\n`,
// `\r\n.\r`): such bytes can never be stored as a message boundary.

export class BareNewlineDetector {
  #prevCR = false;
  #found = false;

  get found(): boolean {
    return this.#found;
  }

  feed(chunk: Uint8Array): void {
    if (this.#found) return;
    let prevCR = this.#prevCR;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 0x0a) {
        if (!prevCR) {
          this.#found = true;
          return;
        }
        prevCR = false;
      } else if (prevCR) {
        this.#found = true; // CR not followed by LF
        return;
      } else {
        prevCR = b === 0x0d;
      }
    }
    this.#prevCR = prevCR;
  }

  /** Call at the end of the message: a trailing lone CR is bare too. */
  end(): boolean {
    if (this.#prevCR) this.#found = true;
    return this.#found;
  }
}

/** A NUL byte anywhere in a message. RFC 5322 §2.2 and §3.5 allow no NUL in header or body
 *  text, and RFC 6152 (8BITMIME) none in 8-bit data: only BINARYMIME (RFC 3030, which we do
 *  not offer) could carry one. Stored, it would reach IMAP clients and other servers that
 *  cut strings at it. Refused like a bare CR or LF, on both ports. */
export class NulDetector {
  #found = false;

  get found(): boolean {
    return this.#found;
  }

  feed(chunk: Uint8Array): void {
    if (!this.#found && chunk.indexOf(0) !== -1) this.#found = true;
  }
}
