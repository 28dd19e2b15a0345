// Parsing a JSON request body without holding the event loop (docs/architecture.md, "nothing a
// client sends can block the event loop"). JSON.parse of a 10 MB body of many small objects
// costs ~150 ms in one piece on the machines here; a body above `sliceBytes` is fed to a
// streaming parser (@streamparser/json) one slice at a time with a turn of the event loop in
// between (~8 ms per 64 KiB slice of such a body), so other clients are served meanwhile.
// Nesting is bounded before anything deep is built: a byte scan (outside strings) follows the
// depth of [ and { in every slice, so no later walk (validation, JSON.stringify of a response)
// can overflow the stack. RFC 8259: a UTF-8 text; a leading byte order mark is refused as
// JSON.parse refuses it (§8.1: "MUST NOT add a byte order mark").

import { isUtf8 } from 'node:buffer';
import { setImmediate as turn } from 'node:timers/promises';
import { JSONParser } from '@streamparser/json';

export type JsonBody = { ok: true; value: unknown } | { ok: false; reason: 'syntax' | 'depth' };

export interface JsonBodyOptions {
  /** Deepest nesting of arrays and objects accepted. */
  maxDepth: number;
  /** Bodies up to this many bytes are parsed in one go (JSON.parse); larger ones in slices. */
  sliceBytes?: number;
}

const DEFAULT_SLICE = 64 * 1024;

/** Follows string state and nesting depth across slices; `exceeded` once deeper than max. */
class DepthScan {
  #inString = false;
  #escape = false;
  #depth = 0;
  #max: number;
  exceeded = false;
  constructor(max: number) {
    this.#max = max;
  }

  scan(bytes: Uint8Array): void {
    const max = this.#max;
    let inString = this.#inString;
    let escaped = this.#escape;
    let depth = this.#depth;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      if (inString) {
        if (escaped) escaped = false;
        else if (b === 0x5c) escaped = true;
        else if (b === 0x22) inString = false;
      } else if (b === 0x22) inString = true;
      else if (b === 0x5b || b === 0x7b) {
        if (++depth > max) {
          this.exceeded = true;
          return;
        }
      } else if (b === 0x5d || b === 0x7d) depth--;
    }
    this.#inString = inString;
    this.#escape = escaped;
    this.#depth = depth;
  }
}

const BOM = [0xef, 0xbb, 0xbf];

/** The value of a JSON body, or why it is not one: malformed ('syntax', also a byte order mark
 *  or invalid UTF-8) or nested deeper than maxDepth. */
export async function parseJsonBody(body: Buffer, opts: JsonBodyOptions): Promise<JsonBody> {
  // RFC 7493 §2.1 (I-JSON, which RFC 8620 §3.1 asks for): UTF-8 only, so invalid UTF-8 is not
  // JSON rather than text with replacement characters.
  if (BOM.every((b, i) => body[i] === b) || !isUtf8(body)) return { ok: false, reason: 'syntax' };
  const depth = new DepthScan(opts.maxDepth);
  const slice = opts.sliceBytes ?? DEFAULT_SLICE;
  if (body.length <= slice) {
    depth.scan(body);
    if (depth.exceeded) return { ok: false, reason: 'depth' };
    try {
      return { ok: true, value: JSON.parse(body.toString('utf8')) };
    } catch {
      return { ok: false, reason: 'syntax' };
    }
  }
  let value: unknown;
  let got = false;
  const parser = new JSONParser({ paths: ['$'], keepStack: false });
  parser.onValue = (v) => {
    value = v.value;
    got = true;
  };
  let failed = false;
  parser.onError = () => {
    failed = true;
  };
  try {
    for (let at = 0; at < body.length && !failed; at += slice) {
      const part = body.subarray(at, at + slice);
      depth.scan(part);
      if (depth.exceeded) return { ok: false, reason: 'depth' };
      parser.write(part);
      await turn();
    }
    if (!failed && !parser.isEnded) parser.end();
  } catch {
    return { ok: false, reason: 'syntax' };
  }
  return got && !failed ? { ok: true, value } : { ok: false, reason: 'syntax' };
}
