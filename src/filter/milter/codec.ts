// The milter protocol's packets (Sendmail libmilter, protocol version 6; constants as in
// libmilter's mfdef.h and mfapi.h), MTA side: encoders for the commands we send and a pure,
// bounded decoder of the replies a milter sends.
//
// A packet is a 4-byte big-endian length (covering the command byte and the data), one command
// byte, then the data. Strings are NUL-terminated. Header names and values and body bytes are
// carried as latin1 strings here, one character per byte, so that whatever bytes a message or a
// milter holds (8-bit headers, RFC 6532 UTF-8) cross unchanged.
//
// Invariants: the decoder never holds more than one packet of LIMITS.milter.maxPacketBytes plus
// the 4 bytes of its length; a longer length is refused before any of it is buffered; every
// reply is checked for its exact shape (a milter is a peer, not trusted code).

import { LIMITS } from '../../core/limits.ts';

/** The version we speak (SMFI_PROT_VERSION). A milter may answer 2 to 6. */
export const PROTOCOL_VERSION = 6;

/** Commands, MTA to milter (SMFIC_*). */
export const CMD = {
  abort: 'A',
  body: 'B',
  connect: 'C',
  macro: 'D',
  eom: 'E',
  helo: 'H',
  quitNc: 'K',
  header: 'L',
  mail: 'M',
  eoh: 'N',
  optneg: 'O',
  quit: 'Q',
  rcpt: 'R',
  data: 'T',
  unknown: 'U',
} as const;

/** Actions a milter may take at end of message (SMFIF_*). */
export const ACTION = {
  addHeaders: 0x01,
  changeBody: 0x02,
  addRcpt: 0x04,
  delRcpt: 0x08,
  changeHeaders: 0x10,
  quarantine: 0x20,
  changeFrom: 0x40,
  addRcptPar: 0x80,
  setSymList: 0x100,
} as const;

/** Protocol steps a milter may ask us to leave out (SMFIP_NO*) or not to wait a reply for
 *  (SMFIP_NR_*), and two behaviours (SMFIP_SKIP, SMFIP_HDR_LEADSPC). */
export const PROTO = {
  noConnect: 0x01,
  noHelo: 0x02,
  noMail: 0x04,
  noRcpt: 0x08,
  noBody: 0x10,
  noHeaders: 0x20,
  noEoh: 0x40,
  nrHeader: 0x80,
  noUnknown: 0x100,
  noData: 0x200,
  skip: 0x400,
  rcptRej: 0x800,
  nrConnect: 0x1000,
  nrHelo: 0x2000,
  nrMail: 0x4000,
  nrRcpt: 0x8000,
  nrData: 0x10000,
  nrUnknown: 0x20000,
  nrEoh: 0x40000,
  nrBody: 0x80000,
  headerLeadingSpace: 0x100000,
} as const;

/** What we offer: every action (envelope changes included, so that a milter that registers for
 *  them still negotiates; client.ts refuses their use), every step flag. */
export const OFFERED_ACTIONS = 0x1ff;
export const OFFERED_PROTOCOL = 0x1fffff;

/** SMFIM_*: the stages of a macro list a milter may ask for in its option negotiation. */
export const MACRO_STAGES = ['C', 'H', 'M', 'R', 'T', 'E', 'N'] as const;
export type MacroStage = (typeof MACRO_STAGES)[number];

export class MilterProtocolError extends Error {}

// --- encoding -----------------------------------------------------------------------------

function packet(cmd: string, parts: readonly Buffer[] = []): Buffer {
  let len = 1;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32BE(len, 0);
  out[4] = cmd.charCodeAt(0);
  let at = 5;
  for (const p of parts) {
    p.copy(out, at);
    at += p.length;
  }
  return out;
}

/** A NUL-terminated string; a NUL inside would end it early on the other side, so it is cut
 *  there (an SMTP peer cannot send one in the fields we pass: the reader refuses NUL). */
function cstr(s: string, encoding: BufferEncoding = 'utf8'): Buffer {
  const nul = s.indexOf('\0');
  return Buffer.from(`${nul < 0 ? s : s.slice(0, nul)}\0`, encoding);
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function encodeOptneg(version: number, actions: number, protocol: number): Buffer {
  return packet(CMD.optneg, [u32(version), u32(actions), u32(protocol)]);
}

/** SMFIC_MACRO: the macros that go with the command `forCmd` (sent just before it). */
export function encodeMacros(forCmd: string, macros: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [Buffer.from(forCmd, 'latin1')];
  for (const [k, v] of macros) parts.push(cstr(k), cstr(v));
  return packet(CMD.macro, parts);
}

/** SMFIC_CONNECT: host name, family ('4', '6', 'L' local, 'U' unknown), port, address. */
export function encodeConnect(hostname: string, family: '4' | '6' | 'L' | 'U', port: number, address: string): Buffer {
  if (family === 'U') return packet(CMD.connect, [cstr(hostname), Buffer.from('U')]);
  const p = Buffer.allocUnsafe(2);
  p.writeUInt16BE(port & 0xffff, 0);
  return packet(CMD.connect, [cstr(hostname), Buffer.from(family), p, cstr(address)]);
}

export function encodeHelo(helo: string): Buffer {
  return packet(CMD.helo, [cstr(helo)]);
}

/** SMFIC_MAIL / SMFIC_RCPT: the address in angle brackets, then its ESMTP parameters. */
export function encodeAddress(
  cmd: typeof CMD.mail | typeof CMD.rcpt,
  address: string,
  args: readonly string[] = [],
): Buffer {
  return packet(cmd, [cstr(`<${address}>`), ...args.map((a) => cstr(a))]);
}

/** SMFIC_HEADER: name and value, as latin1 byte strings. */
export function encodeHeader(name: string, value: string): Buffer {
  return packet(CMD.header, [cstr(name, 'latin1'), cstr(value, 'latin1')]);
}

/** SMFIC_BODY: one chunk of at most LIMITS.milter.bodyChunkBytes. */
export function encodeBody(chunk: Buffer): Buffer {
  if (chunk.length > LIMITS.milter.bodyChunkBytes) throw new RangeError('body chunk too large');
  return packet(CMD.body, [chunk]);
}

/** A command without data (EOH, DATA, EOM, ABORT, QUIT). */
export function encodeBare(cmd: string): Buffer {
  return packet(cmd);
}

// --- decoding -----------------------------------------------------------------------------

export interface RawPacket {
  readonly cmd: string;
  readonly data: Buffer;
}

/** Cuts packets out of the byte stream of one connection; bounded (see the header). */
export class PacketReader {
  readonly #max: number;
  #chunks: Buffer<ArrayBufferLike>[] = [];
  #size = 0;

  constructor(maxPacketBytes: number = LIMITS.milter.maxPacketBytes) {
    this.#max = maxPacketBytes;
  }

  push(chunk: Buffer<ArrayBufferLike>): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size >= 4) {
      const len = this.#peekLength();
      if (len === 0 || len > this.#max) throw new MilterProtocolError(`packet length ${len} out of bounds`);
    }
  }

  #peekLength(): number {
    const first = this.#chunks[0] as Buffer;
    if (first.length >= 4) return first.readUInt32BE(0);
    return this.#take(4, false).readUInt32BE(0);
  }

  /** The bytes at the front, consumed or not. */
  #take(n: number, consume: boolean): Buffer {
    const joined = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    const out = joined.subarray(0, n);
    if (consume) {
      const rest = joined.subarray(n);
      this.#chunks = rest.length > 0 ? [rest] : [];
      this.#size = rest.length;
    } else {
      this.#chunks = [joined];
    }
    return out;
  }

  /** The next whole packet, or null until more bytes arrive. */
  next(): RawPacket | null {
    if (this.#size < 4) return null;
    const len = this.#peekLength();
    if (len === 0 || len > this.#max) throw new MilterProtocolError(`packet length ${len} out of bounds`);
    if (this.#size < 4 + len) return null;
    const p = this.#take(4 + len, true);
    // A copy: the packet outlives the chunk it was cut from (body replacement is spooled later).
    return { cmd: String.fromCharCode(p[4] as number), data: Buffer.from(p.subarray(5)) };
  }

  /** Bytes held that do not make a whole packet yet. */
  get pending(): number {
    return this.#size;
  }
}

export interface ReplyText {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

export type Reply =
  | {
      readonly kind: 'optneg';
      readonly version: number;
      readonly actions: number;
      readonly protocol: number;
      readonly macros: ReadonlyMap<MacroStage, readonly string[]>;
    }
  | {
      readonly kind:
        | 'accept'
        | 'continue'
        | 'reject'
        | 'tempfail'
        | 'discard'
        | 'skip'
        | 'progress'
        | 'shutdown'
        | 'connfail';
    }
  | { readonly kind: 'replycode'; readonly reply: ReplyText }
  | { readonly kind: 'addheader'; readonly name: string; readonly value: string }
  | { readonly kind: 'chgheader' | 'insheader'; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: 'replbody'; readonly chunk: Buffer }
  | { readonly kind: 'quarantine'; readonly reason: string }
  | { readonly kind: 'envelope'; readonly what: 'addrcpt' | 'delrcpt' | 'chgfrom' | 'addrcpt_par' };

const SIMPLE: Readonly<Record<string, Reply['kind']>> = {
  a: 'accept',
  c: 'continue',
  r: 'reject',
  t: 'tempfail',
  d: 'discard',
  s: 'skip',
  p: 'progress',
  '4': 'shutdown',
  f: 'connfail',
};

const ENVELOPE: Readonly<Record<string, 'addrcpt' | 'delrcpt' | 'chgfrom' | 'addrcpt_par'>> = {
  '+': 'addrcpt',
  '-': 'delrcpt',
  e: 'chgfrom',
  '2': 'addrcpt_par',
};

/** The NUL-terminated strings of `data` from `at`; exactly `count` of them, nothing after. */
function strings(data: Buffer, at: number, count: number): string[] {
  const out: string[] = [];
  let i = at;
  for (let n = 0; n < count; n++) {
    const nul = data.indexOf(0, i);
    if (nul < 0) throw new MilterProtocolError('string without its NUL');
    out.push(data.toString('latin1', i, nul));
    i = nul + 1;
  }
  if (i !== data.length) throw new MilterProtocolError('trailing bytes after the strings');
  return out;
}

function headerName(name: string): string {
  if (name.length === 0 || name.length > LIMITS.milter.maxNameBytes) throw new MilterProtocolError('bad header name');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    // RFC 5322 §3.6.8: ftext is printable US-ASCII but ':'.
    if (c < 33 || c > 126 || c === 0x3a) throw new MilterProtocolError('bad header name');
  }
  return name;
}

/** Decodes one reply packet; throws MilterProtocolError on anything malformed. */
export function decodeReply(p: RawPacket): Reply {
  const simple = SIMPLE[p.cmd];
  if (simple) {
    if (p.data.length !== 0) throw new MilterProtocolError(`reply ${p.cmd} carries data`);
    return { kind: simple } as Reply;
  }
  const envelope = ENVELOPE[p.cmd];
  if (envelope) return { kind: 'envelope', what: envelope };
  switch (p.cmd) {
    case 'O':
      return decodeOptneg(p.data);
    case 'y': {
      const [text] = strings(p.data, 0, 1);
      const reply = parseReplyCode(text ?? '');
      if (!reply) throw new MilterProtocolError('malformed reply code');
      return { kind: 'replycode', reply };
    }
    case 'h': {
      const [name, value] = strings(p.data, 0, 2);
      return { kind: 'addheader', name: headerName(name ?? ''), value: value ?? '' };
    }
    case 'm':
    case 'i': {
      if (p.data.length < 4) throw new MilterProtocolError('header index missing');
      const index = p.data.readUInt32BE(0);
      const [name, value] = strings(p.data, 4, 2);
      return {
        kind: p.cmd === 'm' ? 'chgheader' : 'insheader',
        index,
        name: headerName(name ?? ''),
        value: value ?? '',
      };
    }
    case 'b':
      return { kind: 'replbody', chunk: p.data };
    case 'q': {
      const [reason] = strings(p.data, 0, 1);
      if ((reason ?? '').length > LIMITS.milter.maxReplyBytes)
        throw new MilterProtocolError('quarantine reason too long');
      return { kind: 'quarantine', reason: printable(reason ?? '') };
    }
    default:
      throw new MilterProtocolError(`unknown reply ${JSON.stringify(p.cmd)}`);
  }
}

function decodeOptneg(data: Buffer): Reply {
  if (data.length < 12) throw new MilterProtocolError('short option negotiation');
  const version = data.readUInt32BE(0);
  const actions = data.readUInt32BE(4);
  const protocol = data.readUInt32BE(8);
  // The macro lists a milter wants per stage (smfi_setsymlist): uint32 stage, then a string
  // of space-separated names.
  const macros = new Map<MacroStage, string[]>();
  let at = 12;
  while (at < data.length) {
    if (data.length - at < 5) throw new MilterProtocolError('short macro list');
    const stage = MACRO_STAGES[data.readUInt32BE(at)];
    const nul = data.indexOf(0, at + 4);
    if (!stage || nul < 0) throw new MilterProtocolError('bad macro list');
    const names = data
      .toString('latin1', at + 4, nul)
      .split(' ')
      .filter((n) => n !== '');
    macros.set(stage, names.slice(0, 64));
    at = nul + 1;
  }
  return { kind: 'optneg', version, actions, protocol, macros };
}

/** "550 5.7.1 text" (RFC 5321 §4.2, RFC 3463): a 4xx or 5xx code, optionally an enhanced code
 *  of the same class, printable text. A multi-line reply ("550-...\r\n550 ...") keeps its
 *  lines' texts joined with a space. Null when malformed. */
export function parseReplyCode(s: string): ReplyText | null {
  if (s.length < 3 || s.length > LIMITS.milter.maxReplyBytes) return null;
  const lines = s.split(/\r?\n/).filter((l) => l !== '');
  const code = s.slice(0, 3);
  if (!/^[45][0-9][0-9]$/.test(code)) return null;
  let enhanced = '';
  const texts: string[] = [];
  for (const [n, line] of lines.entries()) {
    if (line.slice(0, 3) !== code) return null;
    const sep = line.charAt(3);
    const last = n === lines.length - 1;
    if (line.length > 3 && sep !== (last ? ' ' : '-')) return null;
    let rest = line.slice(4);
    const e = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(rest);
    if (e) {
      if (e[1] !== code[0]) return null;
      enhanced ||= `${e[1]}.${e[2]}.${e[3]}`;
      rest = rest.slice(e[0].length);
    }
    for (let i = 0; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c < 32 || c > 126) return null;
    }
    if (rest !== '') texts.push(rest);
  }
  return { code: Number(code), enhanced, text: texts.join(' ') };
}

function printable(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 32 && c <= 126 ? s.charAt(i) : '?';
  }
  return out;
}
