// The Sender Rewriting Scheme, "Guarded" variant of Mail::SRS and libsrs2 (docs/srs.md). The
// scheme has no RFC; the reference is Shevek's "Sender Rewriting Scheme" paper and Mail::SRS
// 0.31 (Mail::SRS, Mail::SRS::Shortcut, Mail::SRS::Guarded), with which it interoperates
// (test/srs/interop.test.ts):
//
//   SRS0<sep>HHHH=TT=orig-domain=orig-local@our-domain        first hop (from an ordinary sender)
//   SRS1<sep>HHHH=first-hop=<sep'>HHHH=TT=orig-domain=orig-local@our-domain   (from an SRS0/SRS1)
//
// HHHH: HMAC-SHA1 under the secret of the lower-cased fields concatenated, base64, first 4
// characters; compared case-insensitively when reversing (a hop may smash case). TT: days since
// the epoch modulo 1024 in two base32 characters. <sep> is '=', '+' or '-' (the first separator
// only); every other separator is '='.
//
// Pure apart from the clock, which is injected. Every failure is an SrsError with a code.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { LIMITS } from '../core/limits.ts';

export type SrsErrorCode =
  /** The address is not an SRS0/SRS1 address (not ours to reverse). */
  | 'not-srs'
  /** An SRS address whose fields cannot be read, or a sender that cannot be rewritten. */
  | 'malformed'
  /** The hash does not match under any of our secrets. */
  | 'forged'
  /** The hash matches but the time stamp is older than the maximum age (or from the future). */
  | 'expired'
  /** Input or result longer than LIMITS.srs allows. */
  | 'too-long';

export class SrsError extends Error {
  readonly code: SrsErrorCode;
  constructor(code: SrsErrorCode, message: string) {
    super(message);
    this.name = 'SrsError';
    this.code = code;
  }
}

export type SrsSeparator = '=' | '+' | '-';

export interface SrsOptions {
  /** The first signs new addresses; all of them are accepted when reversing (rotation). */
  readonly secrets: readonly (string | Buffer)[];
  /** Days an SRS0 time stamp stays valid (Mail::SRS MaxAge). */
  readonly maxAgeDays?: number;
  /** Separator after the SRS0/SRS1 tag of the addresses we make (Mail::SRS Separator). */
  readonly separator?: SrsSeparator;
  /** Rewrite even when the sender's domain is the forwarding domain (Mail::SRS AlwaysRewrite). */
  readonly alwaysRewrite?: boolean;
  /** Milliseconds since the epoch (tests inject a clock). */
  readonly now?: () => number;
}

const SEP = '=';
const DAY_MS = 86_400_000;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** Base64 of a 20-byte SHA-1 without padding. */
const FULL_HASH_LENGTH = 27;

/** The tag ("SRS0"/"SRS1", any case) and first separator at the start of a local part, or null. */
function srsTag(local: string): { kind: 0 | 1; sep: string } | null {
  if (local.length < 5) return null;
  const tag = local.slice(0, 4).toUpperCase();
  const sep = local[4] as string;
  if (sep !== '=' && sep !== '+' && sep !== '-') return null;
  if (tag === 'SRS0') return { kind: 0, sep };
  if (tag === 'SRS1') return { kind: 1, sep };
  return null;
}

/** Perl's split(/=/, s, n): at most n fields, the last keeps the rest (empty fields kept). */
function splitN(s: string, n: number): string[] {
  const out: string[] = [];
  let start = 0;
  while (out.length < n - 1) {
    const at = s.indexOf(SEP, start);
    if (at < 0) break;
    out.push(s.slice(start, at));
    start = at + 1;
  }
  out.push(s.slice(start));
  return out;
}

/** Splits at the last '@' (Mail::SRS: /^(.*)\@([^@]+)$/). */
function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at < 0 || at === address.length - 1) return null;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** Perl's lc on a byte string: ASCII letters only, on the UTF-8 bytes. */
function lowerBytes(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c >= 0x41 && c <= 0x5a) b[i] = c + 0x20;
  }
  return b;
}

/** The full base64 HMAC-SHA1 (27 characters, no padding) of the lower-cased fields. */
function digest(secret: string | Buffer, fields: readonly string[]): string {
  const h = createHmac('sha1', secret);
  for (const f of fields) h.update(lowerBytes(f));
  return h.digest('base64').slice(0, FULL_HASH_LENGTH);
}

/** Two base32 characters of the day number modulo 1024 (Mail::SRS timestamp_create). */
export function srsTimestamp(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  return (BASE32[(days >> 5) & 31] as string) + (BASE32[days & 31] as string);
}

/** The day number modulo 1024 of a time stamp, or null if it is not two base32 characters. */
function timestampValue(ts: string): number | null {
  if (ts.length !== 2) return null;
  const hi = BASE32.indexOf(ts[0]?.toUpperCase() as string);
  const lo = BASE32.indexOf(ts[1]?.toUpperCase() as string);
  if (hi < 0 || lo < 0) return null;
  return hi * 32 + lo;
}

/** Constant-time string equality (UTF-8, so no character stands in for another). */
function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Srs {
  readonly #secrets: readonly (string | Buffer)[];
  readonly #maxAge: number;
  readonly #sep: SrsSeparator;
  readonly #alwaysRewrite: boolean;
  readonly #now: () => number;

  constructor(opts: SrsOptions) {
    if (opts.secrets.length === 0) throw new SrsError('malformed', 'SRS needs at least one secret');
    for (const s of opts.secrets) {
      if (s.length === 0) throw new SrsError('malformed', 'SRS secrets must not be empty');
    }
    const maxAge = opts.maxAgeDays ?? LIMITS.srs.defaultMaxAgeDays;
    if (!Number.isInteger(maxAge) || maxAge < 1 || maxAge >= LIMITS.srs.timestampSlots) {
      throw new SrsError('malformed', `SRS maximum age must be 1..${LIMITS.srs.timestampSlots - 1} days`);
    }
    this.#secrets = [...opts.secrets];
    this.#maxAge = maxAge;
    this.#sep = opts.separator ?? '=';
    this.#alwaysRewrite = opts.alwaysRewrite ?? false;
    this.#now = opts.now ?? Date.now;
  }

  /** Whether `address` looks like an SRS0/SRS1 address (no check of its hash). */
  static isSrs(address: string): boolean {
    const parts = splitAddress(address);
    return parts !== null && srsTag(parts.local) !== null;
  }

  #hash(fields: readonly string[]): string {
    return digest(this.#secrets[0] as string | Buffer, fields).slice(0, LIMITS.srs.hashLength);
  }

  /** Mail::SRS hash_verify: a prefix of at least hashMin characters of the HMAC under any
   *  secret; exact matches are tried before case-insensitive ones. */
  #verify(hash: string, fields: readonly string[]): boolean {
    if (hash.length < LIMITS.srs.hashMin || hash.length > FULL_HASH_LENGTH) return false;
    const valid = this.#secrets.map((s) => digest(s, fields).slice(0, hash.length));
    if (valid.some((v) => sameString(v, hash))) return true;
    const lower = hash.toLowerCase();
    return valid.some((v) => sameString(v.toLowerCase(), lower));
  }

  /** The envelope sender to use when forwarding mail from `sender` through `domain` (a domain
   *  or an address whose domain is taken). A sender already SRS becomes SRS1, naming its first
   *  hop; any other becomes SRS0. Unchanged when the sender's domain is `domain` (unless
   *  alwaysRewrite), as in Mail::SRS. */
  forward(sender: string, domain: string): string {
    if (sender.length > LIMITS.srs.maxAddress) throw new SrsError('too-long', 'sender address too long');
    const parts = splitAddress(sender);
    if (parts === null) throw new SrsError('malformed', 'sender has no domain');
    const { local, domain: sendHost } = parts;
    if (local.includes('@')) throw new SrsError('malformed', 'sender local part contains @');
    if (local.length === 0) throw new SrsError('malformed', 'sender local part is empty');
    const aliasHost = splitAddress(domain)?.domain ?? domain;
    if (aliasHost.length === 0 || aliasHost.includes('@')) throw new SrsError('malformed', 'bad forwarding domain');
    if (!this.#alwaysRewrite && aliasHost.toLowerCase() === sendHost.toLowerCase()) return sender;
    const out = `${this.#compile(sendHost, local)}@${aliasHost}`;
    if (out.length > LIMITS.srs.maxAddress) throw new SrsError('too-long', 'rewritten address too long');
    return out;
  }

  #compile(sendHost: string, local: string): string {
    const tag = srsTag(local);
    if (tag?.kind === 1) {
      // Guarded: SRS1 again keeps the first hop and its SRS0 part, re-hashed under our secret.
      const [, firstHop, rest] = splitN(local.slice(5), 3);
      if (firstHop && rest !== undefined) {
        return `SRS1${this.#sep}${[this.#hash([firstHop, rest]), firstHop, rest].join(SEP)}`;
      }
      // Not a readable SRS1 address: wrapped as an ordinary sender below.
    } else if (tag?.kind === 0) {
      // Guarded: the SRS0 part (with its separator, "SRS0" stripped) stays opaque to us.
      const rest = local.slice(4);
      return `SRS1${this.#sep}${[this.#hash([sendHost, rest]), sendHost, rest].join(SEP)}`;
    }
    if (local.length > LIMITS.srs.maxLocalPart) throw new SrsError('too-long', 'sender local part too long');
    const ts = srsTimestamp(this.#now());
    return `SRS0${this.#sep}${[this.#hash([ts, sendHost, local]), ts, sendHost, local].join(SEP)}`;
  }

  /** The address an SRS address of ours stands for: the original sender for SRS0, the first
   *  hop's SRS0 address for SRS1. Throws SrsError: not-srs, malformed, forged, expired. */
  reverse(address: string): string {
    if (address.length > LIMITS.srs.maxAddress) throw new SrsError('too-long', 'address too long');
    const parts = splitAddress(address);
    if (parts === null) throw new SrsError('not-srs', 'address has no domain');
    const tag = srsTag(parts.local);
    if (tag === null) throw new SrsError('not-srs', 'not an SRS address');
    const body = parts.local.slice(5);
    if (tag.kind === 1) {
      const [hash, firstHop, rest] = splitN(body, 3);
      // A '.' in the hash field is the hashless SRS1 of Mail::SRS <= 0.27 (AllowUnsafeSrs): refused.
      if (hash?.includes('.')) throw new SrsError('forged', 'SRS1 address without a hash');
      if (hash === undefined || !firstHop || !rest) throw new SrsError('malformed', 'SRS1 address lacks fields');
      if (!this.#verify(hash, [firstHop, rest])) throw new SrsError('forged', 'SRS1 hash does not match');
      return `SRS0${rest}@${firstHop}`;
    }
    const [hash, ts, host, user] = splitN(body, 4);
    if (hash === undefined || ts === undefined || !host || !user) {
      throw new SrsError('malformed', 'SRS0 address lacks fields');
    }
    const day = timestampValue(ts);
    if (day === null) throw new SrsError('malformed', 'SRS0 time stamp is not two base32 characters');
    if (!this.#verify(hash, [ts, host, user])) throw new SrsError('forged', 'SRS0 hash does not match');
    const slots = LIMITS.srs.timestampSlots;
    const today = Math.floor(this.#now() / DAY_MS) % slots;
    // Mail::SRS timestamp_check: valid from the day written to maxAge days later; a stamp from
    // the future counts as written a cycle (1024 days) ago.
    if ((today - day + slots) % slots > this.#maxAge) throw new SrsError('expired', 'SRS0 address has expired');
    return `${user}@${host}`;
  }
}
