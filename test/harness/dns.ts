// A real, authoritative-only DNS server for tests, on 127.0.0.1 with UDP and TCP on one ephemeral
// port. Point a `node:dns` Resolver at it with `setServers([dns.address])` and every lookup of the
// code under test (MX routing, SPF/DKIM/DMARC through mailauth) is answered from records the test
// chose, over the real wire protocol: NXDOMAIN vs NODATA, CNAME chasing, truncation and TCP
// fallback, SERVFAIL and timeouts on demand. Nothing is ever sent off the machine.

import dgram from 'node:dgram';
import net from 'node:net';
import type { Answer, DecodedPacket, OptAnswer, Packet, Question } from 'dns-packet';
import dnsPacket from 'dns-packet';

export type TestRecord =
  | { type: 'A'; name: string; address: string; ttl?: number }
  | { type: 'AAAA'; name: string; address: string; ttl?: number }
  /** exchange '.' is a null MX (RFC 7505). */
  | { type: 'MX'; name: string; preference: number; exchange: string; ttl?: number }
  /** A string longer than 255 octets goes out as several 255-octet character-strings. */
  | { type: 'TXT'; name: string; text: string | string[]; ttl?: number }
  | { type: 'CNAME'; name: string; target: string; ttl?: number }
  | { type: 'PTR'; name: string; target: string; ttl?: number };

export interface TestDnsServer {
  readonly port: number;
  /** '127.0.0.1:PORT', ready for Resolver#setServers. */
  readonly address: string;
  add(...records: TestRecord[]): void;
  /** Removes every record of the name, or only those of one type. */
  remove(name: string, type?: TestRecord['type']): void;
  /** Names for which every query gets SERVFAIL (to simulate temporary DNS errors). */
  failing: Set<string>;
  /** Names whose queries are never answered (timeouts). */
  silent: Set<string>;
  /**
   * Count of queries received, per 'name/TYPE' with the name lower-cased (e.g. 'example.test/MX').
   * Every query that arrives counts, so a truncated UDP answer retried over TCP counts twice.
   */
  readonly queries: Map<string, number>;
  close(): Promise<void>;
}

const DEFAULT_TTL = 300;
const MAX_CNAME_HOPS = 8;
/** The UDP payload size we advertise in our own OPT record (the DNS Flag Day 2020 value). */
const OUR_UDP_SIZE = 1232;
const CLASSIC_UDP_SIZE = 512;
const MAX_TCP_MESSAGE = 65535;
const BIND_ATTEMPTS = 5;

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const FLAG_QR = 0x8000;
const OPCODE_MASK = 0x7800;

/** Lower-case, no trailing dot; the root is ''. */
function normalize(name: string): string {
  return name.toLowerCase().replace(/\.+$/, '');
}

/** dns-packet spells the root '.', and mis-sizes ''. */
function wire(name: string): string {
  return name === '' ? '.' : name;
}

function checkName(name: string, what: string): string {
  const n = normalize(name);
  if (n === '') return n;
  if (Buffer.byteLength(n) > 253) throw new Error(`DNS ${what} too long: ${name}`);
  for (const label of n.split('.')) {
    const len = Buffer.byteLength(label);
    if (len === 0 || len > 63) throw new Error(`bad DNS label in ${what}: ${name}`);
  }
  return n;
}

/** Splits into character-strings of at most 255 octets (an empty string stays one empty string). */
function txtChunks(text: string | string[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (const s of typeof text === 'string' ? [text] : text) {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.length === 0) chunks.push(bytes);
    for (let i = 0; i < bytes.length; i += 255) chunks.push(bytes.subarray(i, i + 255));
  }
  if (chunks.length === 0) chunks.push(Buffer.alloc(0));
  return chunks;
}

/** Stored form: normalized names, a TTL, TXT already in chunks. */
type Stored =
  | { type: 'A' | 'AAAA'; ttl: number; address: string }
  | { type: 'MX'; ttl: number; preference: number; exchange: string }
  | { type: 'TXT'; ttl: number; chunks: Buffer[] }
  | { type: 'CNAME' | 'PTR'; ttl: number; target: string };

function toStored(r: TestRecord): Stored {
  const ttl = r.ttl ?? DEFAULT_TTL;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > 0x7fffffff) throw new Error(`bad TTL ${ttl} for ${r.name}`);
  switch (r.type) {
    case 'A':
      if (!net.isIPv4(r.address)) throw new Error(`not an IPv4 address: ${r.address}`);
      return { type: 'A', ttl, address: r.address };
    case 'AAAA':
      if (!net.isIPv6(r.address)) throw new Error(`not an IPv6 address: ${r.address}`);
      return { type: 'AAAA', ttl, address: r.address };
    case 'MX':
      if (!Number.isInteger(r.preference) || r.preference < 0 || r.preference > 0xffff) {
        throw new Error(`bad MX preference ${r.preference} for ${r.name}`);
      }
      return { type: 'MX', ttl, preference: r.preference, exchange: checkName(r.exchange, 'MX exchange') };
    case 'TXT': {
      const chunks = txtChunks(r.text);
      if (chunks.reduce((n, c) => n + c.length + 1, 0) > 65535) throw new Error(`TXT record too long for ${r.name}`);
      return { type: 'TXT', ttl, chunks };
    }
    case 'CNAME':
    case 'PTR':
      return { type: r.type, ttl, target: checkName(r.target, `${r.type} target`) };
    default:
      throw new Error(`unsupported record type ${(r as { type: unknown }).type}`);
  }
}

/** Identity of a record's data, to keep RRsets free of duplicates. */
function dataKey(s: Stored): string {
  switch (s.type) {
    case 'A':
    case 'AAAA':
      return `${s.type} ${s.address}`;
    case 'MX':
      return `MX ${s.preference} ${s.exchange}`;
    case 'TXT':
      return `TXT ${s.chunks.map((c) => c.toString('hex')).join(' ')}`;
    case 'CNAME':
    case 'PTR':
      return `${s.type} ${s.target}`;
  }
}

function toAnswer(owner: string, s: Stored): Answer {
  const base = { name: wire(owner), ttl: s.ttl, class: 'IN' as const };
  switch (s.type) {
    case 'A':
    case 'AAAA':
      return { ...base, type: s.type, data: s.address };
    case 'MX':
      return { ...base, type: 'MX', data: { preference: s.preference, exchange: wire(s.exchange) } };
    case 'TXT':
      // dns-packet replaces strings in the array it is given, so hand it a fresh one.
      return { ...base, type: 'TXT', data: [...s.chunks] };
    case 'CNAME':
    case 'PTR':
      return { ...base, type: s.type, data: wire(s.target) };
  }
}

function ourOpt(extendedRcode = 0): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: OUR_UDP_SIZE,
    extendedRcode,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

class DnsServer implements TestDnsServer {
  failing = new Set<string>();
  silent = new Set<string>();
  readonly queries = new Map<string, number>();
  #records = new Map<string, { owner: string; data: Stored }[]>();
  #udp: dgram.Socket | undefined;
  #tcp: net.Server | undefined;
  #connections = new Set<net.Socket>();
  #port = 0;
  #closed = false;

  get port(): number {
    return this.#port;
  }

  get address(): string {
    return `127.0.0.1:${this.#port}`;
  }

  add(...records: TestRecord[]): void {
    // Validate everything first, so a bad record leaves the data untouched.
    const prepared = records.map((r) => ({ name: checkName(r.name, 'name'), data: toStored(r) }));
    for (const { name, data } of prepared) {
      const rrs = this.#records.get(name) ?? [];
      const hasCname = rrs.some((x) => x.data.type === 'CNAME');
      if ((data.type === 'CNAME' && rrs.some((x) => x.data.type !== 'CNAME')) || (data.type !== 'CNAME' && hasCname)) {
        throw new Error(`${name}: a CNAME cannot coexist with other records (RFC 1034 §3.6.2)`);
      }
      if (data.type === 'CNAME' && hasCname) {
        throw new Error(`${name}: only one CNAME per name (remove the old one first)`);
      }
      const key = dataKey(data);
      const same = rrs.findIndex((x) => dataKey(x.data) === key);
      if (same >= 0) rrs[same] = { owner: name, data };
      else rrs.push({ owner: name, data });
      this.#records.set(name, rrs);
    }
  }

  remove(name: string, type?: TestRecord['type']): void {
    const n = normalize(name);
    const rrs = this.#records.get(n);
    if (!rrs) return;
    const kept = type === undefined ? [] : rrs.filter((x) => x.data.type !== type);
    if (kept.length === 0) this.#records.delete(n);
    else this.#records.set(n, kept);
  }

  async listen(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const udp = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(0, '127.0.0.1', () => {
          udp.off('error', reject);
          resolve();
        });
      });
      const port = udp.address().port;
      const tcp = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen(port, '127.0.0.1', () => {
            tcp.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < BIND_ATTEMPTS) continue;
        throw err;
      }
      this.#udp = udp;
      this.#tcp = tcp;
      this.#port = port;
      udp.on('error', () => {});
      udp.on('message', (msg, rinfo) => this.#onUdp(msg, rinfo));
      tcp.on('error', () => {});
      tcp.on('connection', (socket) => this.#onTcp(socket));
      return;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of this.#connections) socket.destroy();
    this.#connections.clear();
    const udp = this.#udp;
    const tcp = this.#tcp;
    await Promise.all([
      udp ? new Promise<void>((resolve) => udp.close(() => resolve())) : undefined,
      tcp ? new Promise<void>((resolve) => tcp.close(() => resolve())) : undefined,
    ]);
  }

  #onUdp(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const reply = this.#answer(msg, 'udp');
    if (!reply || this.#closed) return;
    try {
      this.#udp?.send(reply, rinfo.port, rinfo.address, () => {});
    } catch {
      // The socket went away under us; the client will time out, as with a real server.
    }
  }

  #onTcp(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#connections.add(socket);
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      buf = buf.length === 0 ? data : Buffer.concat([buf, data]);
      // RFC 1035 §4.2.2: each message is preceded by its length in two octets.
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const reply = this.#answer(msg, 'tcp');
        if (!reply || socket.destroyed) continue;
        const framed = Buffer.alloc(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        socket.write(framed);
      }
    });
  }

  /** The encoded reply to one message, or undefined to stay silent. Never throws. */
  #answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (this.#closed || msg.length < 12) return undefined;
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return undefined; // malformed: ignored, as many servers do
    }
    try {
      return this.#reply(msg.readUInt16BE(2), query, transport);
    } catch {
      return undefined;
    }
  }

  #reply(rawFlags: number, query: DecodedPacket, transport: 'udp' | 'tcp'): Buffer | undefined {
    if (rawFlags & FLAG_QR) return undefined; // a response: never answer those
    const questions: Question[] = query.questions ?? [];
    const opts = (query.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
    const opt = opts[0];
    const reply: Packet = {
      type: 'response',
      id: query.id ?? 0,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (rawFlags & (OPCODE_MASK | dnsPacket.RECURSION_DESIRED)),
      questions,
      answers: [],
      authorities: [],
      additionals: opt ? [ourOpt()] : [],
    };
    const fail = (rcode: number): Buffer => {
      reply.answers = [];
      reply.flags = (reply.flags ?? 0) | rcode;
      return dnsPacket.encode(reply);
    };

    if (rawFlags & OPCODE_MASK) return fail(RCODE.NOTIMP);
    if (questions.length !== 1 || opts.length > 1) return fail(RCODE.FORMERR);
    if (opt && opt.ednsVersion !== 0) {
      reply.additionals = [ourOpt(1)]; // BADVERS (16): upper eight bits in the OPT record, RFC 6891 §6.1.3
      return fail(RCODE.NOERROR);
    }
    const q = questions[0]!;
    if (q.class !== undefined && q.class !== 'IN' && q.class !== 'ANY') return fail(RCODE.REFUSED);

    const qname = normalize(q.name === '.' ? '' : q.name);
    const key = `${qname}/${q.type}`;
    this.queries.set(key, (this.queries.get(key) ?? 0) + 1);
    if (this.#inSet(this.silent, qname)) return undefined;
    if (this.#inSet(this.failing, qname)) return fail(RCODE.SERVFAIL);

    const { rcode, answers } = this.#lookup(q.name, q.type);
    reply.flags = (reply.flags ?? 0) | rcode;
    reply.answers = answers;
    reply.additionals = [...this.#glue(answers), ...(reply.additionals ?? [])];

    let encoded = dnsPacket.encode(reply);
    const limit = transport === 'tcp' ? MAX_TCP_MESSAGE : Math.max(CLASSIC_UDP_SIZE, opt?.udpPayloadSize ?? 0);
    if (encoded.length > limit && reply.additionals.length > (opt ? 1 : 0)) {
      // Glue is optional: drop it before giving up on the answer (RFC 2181 §9).
      reply.additionals = opt ? [ourOpt()] : [];
      encoded = dnsPacket.encode(reply);
    }
    if (encoded.length > limit) {
      // Too big for this transport: say so with TC and nothing else, and the client retries over TCP.
      reply.flags = (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE;
      reply.answers = [];
      encoded = dnsPacket.encode(reply);
    }
    return encoded;
  }

  #inSet(set: Set<string>, name: string): boolean {
    for (const n of set) if (normalize(n) === name) return true;
    return false;
  }

  /** Whether some stored name lies below this one (then it is an empty non-terminal, not NXDOMAIN). */
  #hasBelow(name: string): boolean {
    if (name === '') return this.#records.size > 0;
    const suffix = `.${name}`;
    for (const n of this.#records.keys()) if (n.endsWith(suffix)) return true;
    return false;
  }

  #lookup(qname: string, qtype: string): { rcode: number; answers: Answer[] } {
    const answers: Answer[] = [];
    // The first owner keeps the spelling of the question, as real servers do.
    let owner = qname === '.' ? '' : qname;
    let name = normalize(owner);
    for (let hops = 0; ; ) {
      const rrs = this.#records.get(name) ?? [];
      if (rrs.length === 0) {
        // RFC 6604: the rcode is that of the last name in a CNAME chain.
        return { rcode: this.#hasBelow(name) ? RCODE.NOERROR : RCODE.NXDOMAIN, answers };
      }
      const matching = qtype === 'ANY' ? rrs : rrs.filter((x) => x.data.type === qtype);
      if (matching.length > 0) {
        for (const x of matching) answers.push(toAnswer(owner, x.data));
        return { rcode: RCODE.NOERROR, answers };
      }
      const cname = rrs.find((x) => x.data.type === 'CNAME')?.data;
      if (cname?.type !== 'CNAME' || qtype === 'CNAME') return { rcode: RCODE.NOERROR, answers };
      answers.push(toAnswer(owner, cname));
      if (hops++ >= MAX_CNAME_HOPS) return { rcode: RCODE.NOERROR, answers };
      owner = cname.target;
      name = cname.target;
    }
  }

  /** A/AAAA records of MX exchanges we know, for the additional section. */
  #glue(answers: Answer[]): Answer[] {
    const glue: Answer[] = [];
    const seen = new Set<string>();
    for (const a of answers) {
      if (a.type !== 'MX') continue;
      const exchange = normalize(a.data.exchange === '.' ? '' : a.data.exchange);
      if (exchange === '' || seen.has(exchange)) continue;
      seen.add(exchange);
      for (const x of this.#records.get(exchange) ?? []) {
        if (x.data.type === 'A' || x.data.type === 'AAAA') glue.push(toAnswer(x.owner, x.data));
      }
    }
    return glue;
  }
}

/** Starts a server with the given records; add or remove more at any time. */
export async function startTestDns(records: TestRecord[] = []): Promise<TestDnsServer> {
  const server = new DnsServer();
  server.add(...records);
  await server.listen();
  return server;
}
