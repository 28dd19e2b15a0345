// The DATA reader: one pass over the message's chunks as they arrive (dot-stuffing already
// removed by wire/data.ts), writing them to the spool while it collects the facts the body
// checks (body.ts) decide on: NUL, bare CR/LF (port 25), the header block (bounded), the size.
// Submission turns sloppy line endings into CRLF here (we re-send the bytes, so nothing
// ambiguous leaves). Past a limit or after bytes we refuse, the rest is only drained, never
// stored. Each chunk is looked at once by each detector and written as it is: no copy.

import { CrlfNormalizer } from '../../core/crlf.ts';
import type { SpoolWriter } from '../../store/types.ts';
import { BareNewlineDetector, NulDetector } from '../line-endings.ts';
import type { MessageStream } from '../message-stream.ts';
import { HeaderCapture, type HeaderResult } from '../submission.ts';
import type { BodyFacts } from './body.ts';

export class DataReader implements BodyFacts {
  readonly spool: SpoolWriter;
  readonly #stream: MessageStream;
  readonly #nul = new NulDetector();
  readonly #bare: BareNewlineDetector | null;
  readonly #crlf: CrlfNormalizer | null;
  readonly #headers: HeaderCapture;
  #header: HeaderResult | null = null;

  /** `normalize`: submission (line endings made CRLF); else bare CR/LF are detected. */
  constructor(stream: MessageStream, spool: SpoolWriter, maxHeaderSize: number, normalize: boolean) {
    this.#stream = stream;
    this.spool = spool;
    this.#headers = new HeaderCapture(maxHeaderSize);
    this.#bare = normalize ? null : new BareNewlineDetector();
    this.#crlf = normalize ? new CrlfNormalizer() : null;
  }

  get byteLength(): number {
    return this.#stream.byteLength;
  }
  get sizeExceeded(): boolean {
    return this.#stream.sizeExceeded;
  }
  get headerTooBig(): boolean {
    return this.#headers.tooBig;
  }
  get nul(): boolean {
    return this.#nul.found;
  }
  get bareNewline(): boolean {
    return this.#bare?.found ?? false;
  }

  #refused(): boolean {
    return this.#stream.sizeExceeded || this.#headers.tooBig || this.#nul.found || (this.#bare?.found ?? false);
  }

  /** Reads the message to its end. Throws (the spool discarded) when the client went away. */
  async read(): Promise<void> {
    const crlf = this.#crlf;
    const bare = this.#bare;
    try {
      for await (const raw of this.#stream) {
        this.#nul.feed(raw);
        if (crlf) {
          if (!this.#refused()) await this.#write(crlf.push(raw));
          continue;
        }
        bare?.feed(raw);
        if (!this.#refused()) await this.#write(raw);
      }
      if (crlf && !this.#refused()) await this.#write(crlf.end());
    } catch (err) {
      await this.spool.abort();
      throw err; // the client went away mid-DATA; nothing more is sent
    }
    this.#bare?.end(); // a trailing lone CR is bare too
    this.#header = this.#headers.end();
  }

  /** The header block (fields ending in CRLF, without the empty line), once read() resolved
   *  and the body checks passed. */
  get headerBlock(): Buffer {
    const h = this.#header;
    if (h?.kind !== 'ok') throw new Error('header read before the body checks passed');
    return h.block;
  }

  async #write(chunk: Buffer): Promise<void> {
    this.#headers.feed(chunk);
    if (!this.#refused()) await this.spool.write(chunk);
  }
}
