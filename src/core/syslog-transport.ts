// A pino transport (it runs in pino's transport worker thread, never on the main thread) that
// ships each log line to a syslog receiver:
//   - RFC 5424 §6 messages: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM+JSON, facility
//     mail (2, §6.2.1), severity from the pino level; MSGID is the access line kind (smtp,
//     imap, imap-command, http) or "-"; MSG is the JSON line itself (every field, as on stdout);
//   - framed by octet counting (RFC 6587 §3.4.1: "LEN SP MSG"), over TCP or TLS (RFC 5425 §4.3,
//     the same framing).
// Loss policy: the main thread only hands lines to this thread (pino's thread-stream); here a
// slow or absent receiver never holds anything up: lines wait in a bounded queue
// (`maxLines`) while disconnected or while the socket holds more than SOCKET_BUDGET unsent
// bytes, and past it new lines are dropped and counted in the shared `dropped` counter (read
// by the main thread: arcline_log_dropped_total). Reconnects back off from 100 ms to 5 s.

import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import build from 'pino-abstract-transport';

export interface SyslogOptions {
  /** tcp://host:port or tls://host:port */
  readonly url: string;
  /** HOSTNAME of the messages (our FQDN). */
  readonly hostname: string;
  readonly maxLines: number;
  /** One BigInt64: lines dropped so far (Atomics). */
  readonly dropped: SharedArrayBuffer;
  /** PEM file of the CA that signed the receiver's certificate (tls://); empty: the system's. */
  readonly ca?: string;
}

const SOCKET_BUDGET = 256 * 1024;
const BOM = '\u{feff}';

/** RFC 5424 §6.2.1 severity of a pino level. */
function severity(level: unknown): number {
  if (typeof level !== 'number') return 6;
  if (level >= 60) return 2; // fatal -> critical
  if (level >= 50) return 3; // error
  if (level >= 40) return 4; // warning
  if (level >= 30) return 6; // informational
  return 7; // debug, trace
}

/** PRINTUSASCII without spaces (§6: header fields), at most `max` characters, "-" when empty. */
function field(v: unknown, max: number): string {
  if (typeof v !== 'string' && typeof v !== 'number') return '-';
  let out = '';
  for (const ch of String(v)) {
    const c = ch.charCodeAt(0);
    if (c >= 33 && c <= 126) out += ch;
    if (out.length >= max) break;
  }
  return out === '' ? '-' : out;
}

/** One octet-counted RFC 5424 frame for a pino line (its parsed object and its JSON text). */
export function syslogFrame(obj: Record<string, unknown>, json: string, hostname: string): string {
  const pri = 2 * 8 + severity(obj.level); // facility 2: mail system
  const time = typeof obj.time === 'number' ? new Date(obj.time).toISOString() : new Date().toISOString();
  const msg = `<${pri}>1 ${time} ${field(hostname, 255)} arcline ${field(obj.pid, 128)} ${field(obj.access, 32)} - ${BOM}${json}`;
  return `${Buffer.byteLength(msg)} ${msg}`;
}

function parsed(line: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export default async function syslogTransport(opts: SyslogOptions) {
  const u = new URL(opts.url);
  const secure = u.protocol === 'tls:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port);
  const ca = secure && opts.ca ? readFileSync(opts.ca) : undefined;
  const dropped = new BigInt64Array(opts.dropped);
  const queue: string[] = [];
  let socket: net.Socket | null = null;
  let ready = false;
  let closing = false;
  let backoff = 100;
  let timer: NodeJS.Timeout | null = null;

  const drop = () => Atomics.add(dropped, 0, 1n);

  const flushQueue = () => {
    while (ready && socket && queue.length > 0 && socket.writableLength < SOCKET_BUDGET) {
      socket.write(queue.shift() as string);
    }
  };

  const connect = () => {
    timer = null;
    if (closing) return;
    const s = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...(ca ? { ca } : {}) })
      : net.connect({ host, port });
    socket = s;
    s.setNoDelay(true);
    s.once(secure ? 'secureConnect' : 'connect', () => {
      ready = true;
      backoff = 100;
      flushQueue();
    });
    s.on('drain', flushQueue);
    s.on('error', () => s.destroy());
    s.once('close', () => {
      if (socket !== s) return;
      // Bytes the socket still held are lost with it (they may or may not have arrived).
      socket = null;
      ready = false;
      if (!closing) {
        timer = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    });
  };
  connect();

  const send = (frame: string) => {
    if (ready && socket && queue.length === 0 && socket.writableLength < SOCKET_BUDGET) {
      socket.write(frame);
      return;
    }
    if (queue.length >= opts.maxLines) {
      drop();
      return;
    }
    queue.push(frame);
  };

  return build(
    async (source: AsyncIterable<string>) => {
      for await (const line of source) {
        if (line === '') continue;
        send(syslogFrame(parsed(line), line, opts.hostname));
      }
    },
    {
      parse: 'lines',
      close: async () => {
        closing = true;
        if (timer) clearTimeout(timer);
        flushQueue();
        const s = socket;
        if (!s) return;
        // What is still queued gets a moment to leave; shutdown never waits for a receiver.
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            s.destroy();
            resolve();
          }, 1000);
          s.end(() => {
            clearTimeout(t);
            resolve();
          });
        });
      },
    },
  );
}
