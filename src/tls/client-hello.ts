// A pure, bounded reader of the first bytes a TLS client sends: the ClientHello's server name
// (SNI, RFC 6066 §3) and ALPN protocol list (RFC 7301 §3.1). The HTTPS listener (web/server.ts)
// reads these before any TLS state exists, so that the tls-alpn-01 challenge certificate
// (RFC 8737 §3) goes only to a handshake that offers "acme-tls/1" for a name being validated,
// and every other handshake gets the server's certificate.
//
// Layout (RFC 8446 §5.1, §4.1.2; the same in TLS 1.2, RFC 5246 §6.2.1, §7.4.1.2):
//   record:    type(1)=22 handshake, legacy_version(2), length(2) <= 2^14 (+256 tolerated)
//   handshake: msg_type(1)=1 client_hello, length(3), then the body, which may span records
//   body:      legacy_version(2) random(32) session_id<0..32> cipher_suites<2..2^16-2>
//              compression_methods<1..2^8-1> extensions<0..2^16-1>
// Nothing here loops more than the input's length; every length is checked before it is used.

export type HelloResult =
  /** Not enough bytes yet (and still under `maxBytes`). */
  | { readonly kind: 'more' }
  /** Not a TLS ClientHello, or a malformed one. */
  | { readonly kind: 'invalid'; readonly reason: string }
  | {
      readonly kind: 'hello';
      /** The host_name of the SNI extension, lower-cased; null without one (or an invalid one). */
      readonly serverName: string | null;
      /** ALPN protocols offered, in the client's order (empty without the extension). */
      readonly alpn: readonly string[];
    };

const RECORD_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const MAX_RECORD = 16_384 + 256;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const SNI_HOST_NAME = 0;

const invalid = (reason: string): HelloResult => ({ kind: 'invalid', reason });

/** Reads the ClientHello at the start of `buf`. `maxBytes` bounds what a caller will buffer:
 *  a hello not complete within it is 'invalid'. */
export function parseClientHello(buf: Uint8Array, maxBytes: number): HelloResult {
  // Join the handshake fragments of consecutive handshake records.
  const parts: Uint8Array[] = [];
  let have = 0;
  let need = -1; // handshake message length incl. its 4-byte header, once known
  let pos = 0;
  while (need < 0 || have < need) {
    if (pos + 5 > buf.length) return more(buf, maxBytes);
    if (buf[pos] !== RECORD_HANDSHAKE) return invalid('not a TLS handshake record');
    if (buf[pos + 1] !== 3) return invalid('not a TLS record version');
    const len = u16(buf, pos + 3);
    if (len === 0 || len > MAX_RECORD) return invalid('bad record length');
    if (pos + 5 + len > buf.length) return more(buf, maxBytes);
    parts.push(buf.subarray(pos + 5, pos + 5 + len));
    have += len;
    pos += 5 + len;
    if (need < 0 && have >= 4) {
      const head = concat(parts, 4);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('first handshake message is not a ClientHello');
      need = 4 + ((head[1] ?? 0) << 16) + ((head[2] ?? 0) << 8) + (head[3] ?? 0);
      if (need > maxBytes) return invalid('ClientHello too long');
    }
  }
  return parseBody(concat(parts, need).subarray(4));
}

function more(buf: Uint8Array, maxBytes: number): HelloResult {
  return buf.length >= maxBytes ? invalid('ClientHello too long') : { kind: 'more' };
}

function concat(parts: readonly Uint8Array[], n: number): Uint8Array {
  if (parts.length === 1 && (parts[0]?.length ?? 0) >= n) return (parts[0] as Uint8Array).subarray(0, n);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    if (o >= n) break;
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
  }
  return out.subarray(0, o);
}

function u16(b: Uint8Array, i: number): number {
  return ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
}

function parseBody(b: Uint8Array): HelloResult {
  let p = 2 + 32; // legacy_version, random
  if (p + 1 > b.length) return invalid('truncated ClientHello');
  p += 1 + (b[p] ?? 0); // session_id
  if (p + 2 > b.length) return invalid('truncated ClientHello');
  p += 2 + u16(b, p); // cipher_suites
  if (p + 1 > b.length) return invalid('truncated ClientHello');
  p += 1 + (b[p] ?? 0); // compression_methods
  if (p > b.length) return invalid('truncated ClientHello');
  if (p === b.length) return { kind: 'hello', serverName: null, alpn: [] }; // no extensions (TLS 1.2)
  if (p + 2 > b.length) return invalid('truncated extensions');
  const end = p + 2 + u16(b, p);
  if (end > b.length) return invalid('truncated extensions');
  p += 2;
  let serverName: string | null = null;
  let alpn: string[] = [];
  while (p < end) {
    if (p + 4 > end) return invalid('truncated extension');
    const type = u16(b, p);
    const len = u16(b, p + 2);
    const data = b.subarray(p + 4, p + 4 + len);
    if (p + 4 + len > end) return invalid('truncated extension');
    p += 4 + len;
    if (type === EXT_SERVER_NAME) {
      const r = readServerName(data);
      if (r === undefined) return invalid('malformed server_name extension');
      serverName = r;
    } else if (type === EXT_ALPN) {
      const r = readAlpn(data);
      if (r === null) return invalid('malformed ALPN extension');
      alpn = r;
    }
  }
  return { kind: 'hello', serverName, alpn };
}

/** RFC 6066 §3: ServerNameList; the first host_name, validated as a DNS name (null if it is
 *  not one); undefined when the list is malformed. */
function readServerName(d: Uint8Array): string | null | undefined {
  if (d.length < 2 || u16(d, 0) !== d.length - 2) return undefined;
  let p = 2;
  while (p < d.length) {
    if (p + 3 > d.length) return undefined;
    const type = d[p];
    const len = u16(d, p + 1);
    if (p + 3 + len > d.length) return undefined;
    if (type === SNI_HOST_NAME) return hostName(d.subarray(p + 3, p + 3 + len));
    p += 3 + len;
  }
  return null;
}

function hostName(b: Uint8Array): string | null {
  if (b.length === 0 || b.length > 253) return null;
  let s = '';
  for (const c of b) {
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x2d || c === 0x2e;
    if (!ok) return null;
    s += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c);
  }
  return s.endsWith('.') ? s.slice(0, -1) : s;
}

/** RFC 7301 §3.1: ProtocolNameList of non-empty ProtocolNames. */
function readAlpn(d: Uint8Array): string[] | null {
  if (d.length < 2 || u16(d, 0) !== d.length - 2) return null;
  const out: string[] = [];
  let p = 2;
  while (p < d.length) {
    const len = d[p] ?? 0;
    if (len === 0 || p + 1 + len > d.length) return null;
    out.push(Buffer.from(d.subarray(p + 1, p + 1 + len)).toString('latin1'));
    p += 1 + len;
  }
  return out;
}
