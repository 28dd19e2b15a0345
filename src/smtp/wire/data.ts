// The DATA reader (RFC 5321 §4.1.1.4, §4.5.2): pure and incremental, fed the bytes after the
// 354 reply in chunks split anywhere.
//
// - The end of the data is exactly <CRLF>.<CRLF>, where the first CRLF may be the one that ended
//   the DATA command line (an empty message). Nothing else ends it: "\n.\n", "\r\n.\n",
//   "\n.\r\n", "\r.\r" are message bytes (SMTP smuggling: a receiver that ended DATA there
//   would run the commands hidden after it). Such bytes are then bare CR/LF, which the
//   receiver refuses on port 25 (line-endings.ts).
// - Dot-stuffing is removed (§4.5.2): a line that starts with "." loses that first ".". A
//   "line" starts after CRLF only, the same rule as the end, so the two never disagree.
// - The body is handed on as subarrays of the chunks it came in (no copy); only a CR held back
//   across a chunk boundary (it may be the start of ".\r\n"'s CRLF) is re-emitted from a
//   constant.
//
// States: MID (inside a line), CR (CR seen inside a line), BOL (line start: after CRLF),
// DOT (BOL then "."; the dot is dropped whatever follows), DOTCR (BOL "." CR; LF ends the data).

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const MID = 0;
const SEEN_CR = 1;
const BOL = 2;
const BOL_DOT = 3;
const BOL_DOT_CR = 4;

const CR_BYTE = Buffer.from([CR]);

export class DataReader {
  #state = BOL;
  #bytes = 0;
  #done = false;

  /** Message bytes handed on so far (after unstuffing; the final ".\r\n" is not counted). */
  get bytes(): number {
    return this.#bytes;
  }

  get done(): boolean {
    return this.#done;
  }

  /**
   * Reads `chunk`; calls `emit` with each run of message bytes in order. Returns the number of
   * bytes of `chunk` consumed: all of them, or up to and including the final LF when the end
   * was found (the rest are the client's next commands).
   */
  feed(chunk: Buffer, emit: (bytes: Buffer) => void): number {
    if (this.#done) return 0;
    let state = this.#state;
    let run = 0; // start of the run of bytes not yet emitted
    const out = (to: number) => {
      if (to > run) {
        this.#bytes += to - run;
        emit(chunk.subarray(run, to));
      }
    };
    const n = chunk.length;
    let i = 0;
    if (state === BOL_DOT_CR && n > 0) {
      // The CR held back at the end of the last chunk.
      if (chunk[0] === LF) {
        this.#finish();
        return 1;
      }
      this.#bytes += 1;
      emit(CR_BYTE);
      state = SEEN_CR;
    }
    while (i < n) {
      if (state === MID) {
        // Fast path: nothing matters until the next CR.
        const cr = chunk.indexOf(CR, i);
        if (cr === -1) {
          i = n;
          break;
        }
        i = cr + 1;
        state = SEEN_CR;
        continue;
      }
      const b = chunk[i] as number;
      switch (state) {
        case SEEN_CR:
          state = b === LF ? BOL : b === CR ? SEEN_CR : MID;
          break;
        case BOL:
          if (b === DOT) {
            out(i);
            run = i + 1; // the dot is dropped: stuffing, or the start of the end
            state = BOL_DOT;
          } else state = b === CR ? SEEN_CR : MID;
          break;
        case BOL_DOT:
          // The CR after a line-start dot is held back: ".\r\n" ends the data.
          state = b === CR ? BOL_DOT_CR : MID;
          break;
        default: // BOL_DOT_CR
          if (b === LF) {
            out(i - 1); // without the held CR
            this.#finish();
            return i + 1;
          }
          // Not the end: the CR was message data (a bare CR, as it happens); read b after it.
          state = b === CR ? SEEN_CR : MID;
          break;
      }
      i++;
    }
    // A CR that may start the end's CRLF is not emitted yet.
    out(state === BOL_DOT_CR ? n - 1 : n);
    this.#state = state;
    return n;
  }

  #finish(): void {
    this.#done = true;
    this.#state = BOL;
  }
}
