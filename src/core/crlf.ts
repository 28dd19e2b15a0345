// Line-ending normalisation to CRLF for messages that arrive other than over SMTP (IMAP
// APPEND): a bare LF becomes CRLF, a bare CR becomes CRLF, CRLF stays. Incremental: chunks may
// split anywhere, a CR at the end of one chunk is resolved by the next (or by end()).
// IMAP sizes and section offsets are computed on the stored bytes, so storing CRLF keeps
// RFC822.SIZE and BODY[...] consistent with what clients receive (RFC 9051 §2.3.4).

const CR = 0x0d;
const LF = 0x0a;

export class CrlfNormalizer {
  #pendingCR = false;

  push(chunk: Buffer): Buffer {
    // Fast path: nothing to change.
    if (!this.#pendingCR && !needsWork(chunk)) return chunk;
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let n = 0;
    let i = 0;
    if (this.#pendingCR) {
      out[n++] = CR;
      out[n++] = LF;
      if (chunk[0] === LF) i = 1;
      this.#pendingCR = false;
    }
    for (; i < chunk.length; i++) {
      const c = chunk[i] as number;
      if (c === CR) {
        if (i + 1 === chunk.length) {
          this.#pendingCR = true; // decided by the next chunk
          break;
        }
        out[n++] = CR;
        out[n++] = LF;
        if (chunk[i + 1] === LF) i++;
      } else if (c === LF) {
        out[n++] = CR;
        out[n++] = LF;
      } else {
        out[n++] = c;
      }
    }
    return out.subarray(0, n);
  }

  end(): Buffer {
    if (!this.#pendingCR) return Buffer.alloc(0);
    this.#pendingCR = false;
    return Buffer.from('\r\n');
  }
}

function needsWork(chunk: Buffer): boolean {
  for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1))
    if (i === 0 || chunk[i - 1] !== CR) return true;
  for (let i = chunk.indexOf(CR); i !== -1; i = chunk.indexOf(CR, i + 1)) if (chunk[i + 1] !== LF) return true;
  return false;
}
