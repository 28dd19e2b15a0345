// A latency probe for the IMAP stress bench: one extra client on a plain socket that logs in,
// SELECTs INBOX and, until stopped, repeats a fixed mix of commands, one outstanding at a time
// with a short pause after each reply, timing each from the write of the command to its tagged
// reply (RFC 9051 §2.2.2: the tagged response ends the command):
//   NOOP, UID FETCH 1:* (FLAGS), FETCH <random> BODY.PEEK[HEADER], UID SEARCH UNSEEN,
//   STORE <random> +FLAGS (\Seen).
// <random> is a sequence number in 1..EXISTS as this session knows it (EXISTS and EXPUNGE
// responses are tracked, RFC 9051 §7.4.1, §7.5.1); while the mailbox is empty the two commands
// that need a message are left out of the cycle. A FETCH or STORE on a message another client
// expunged meanwhile may get NO (Dovecot) or OK: both are timed, and NO/BAD replies are counted.

import net from 'node:net';
import { performance } from 'node:perf_hooks';

export const PROBE_COMMANDS = ['NOOP', 'UID FETCH', 'FETCH HEADER', 'UID SEARCH', 'STORE'] as const;
type ProbeCommand = (typeof PROBE_COMMANDS)[number];

export interface ProbeSample {
  readonly command: ProbeCommand;
  readonly ms: number;
}

export interface ProbeResult {
  readonly samples: readonly ProbeSample[];
  /** Tagged NO or BAD replies among the samples. */
  readonly refused: number;
  /** Why the probe stopped early (connection closed, BYE, failed login), or undefined. */
  readonly failure: string | undefined;
}

export interface Probe {
  /** Lets the command in flight finish, logs out, and returns what was measured. */
  stop(): Promise<ProbeResult>;
}

/** Pause after each tagged reply: keeps the probe one light client among the stressed ones. */
const PAUSE_MS = 10;

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function summarise(samples: readonly ProbeSample[], command?: ProbeCommand): LatencySummary {
  const ms = samples
    .filter((s) => command === undefined || s.command === command)
    .map((s) => s.ms)
    .sort((a, b) => a - b);
  return { count: ms.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) ?? Number.NaN };
}

/** One IMAP connection: splits the server's output into responses (skipping literals, RFC 9051
 *  §4.3) and matches tagged replies to the one command in flight. */
class Connection {
  exists = 0;
  closed: string | undefined;
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private literal = 0;
  private response = '';
  private tag = 0;
  private waiting: { tag: string; resolve: (status: string) => void } | undefined;
  private greeted: (() => void) | undefined;
  readonly greeting: Promise<void>;

  constructor(port: number) {
    this.greeting = new Promise((resolve) => {
      this.greeted = resolve;
    });
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.input(d));
    this.socket.on('error', (err) => this.close(`socket error: ${err.message}`));
    this.socket.on('close', () => this.close('connection closed by the server'));
  }

  /** Sends one command and resolves with the tagged status ("OK", "NO", "BAD") once it ends. */
  command(text: string): Promise<string> {
    if (this.closed !== undefined) return Promise.resolve('CLOSED');
    const tag = `p${++this.tag}`;
    return new Promise((resolve) => {
      this.waiting = { tag, resolve };
      this.socket.write(`${tag} ${text}\r\n`);
    });
  }

  end(): void {
    this.socket.end();
  }

  private close(why: string): void {
    this.closed ??= why;
    this.greeted?.();
    this.waiting?.resolve('CLOSED');
    this.waiting = undefined;
  }

  private input(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      if (this.literal > 0) {
        const skip = Math.min(this.literal, this.buf.length);
        this.buf = this.buf.subarray(skip);
        this.literal -= skip;
        if (this.literal > 0) return;
      }
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) return;
      const line = this.buf.toString('latin1', 0, eol);
      this.buf = this.buf.subarray(eol + 2);
      this.response += line;
      const open = line.endsWith('}') ? line.lastIndexOf('{') : -1;
      const size = open >= 0 ? Number(line.slice(open + 1, -1)) : Number.NaN;
      if (Number.isInteger(size)) {
        this.literal = size;
        continue;
      }
      const response = this.response;
      this.response = '';
      this.handle(response);
    }
  }

  private handle(response: string): void {
    if (response.startsWith('* ')) {
      const [, n, name] = response.split(' ', 3);
      if (name === 'EXISTS') this.exists = Number(n);
      else if (name === 'EXPUNGE') this.exists--;
      else if (n === 'BYE') this.close(`BYE from the server: ${response}`);
      else if (this.greeted !== undefined && (n === 'OK' || n === 'PREAUTH')) {
        this.greeted();
        this.greeted = undefined;
      }
      return;
    }
    const waiting = this.waiting;
    if (waiting !== undefined && response.startsWith(`${waiting.tag} `)) {
      this.waiting = undefined;
      waiting.resolve(response.split(' ', 2)[1] ?? '');
    }
  }
}

function quoted(s: string): string {
  return `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Connects, logs in, SELECTs INBOX and starts the command loop. */
export async function startProbe(port: number, user: string, pass: string): Promise<Probe> {
  const conn = new Connection(port);
  await conn.greeting;
  const samples: ProbeSample[] = [];
  let refused = 0;
  let failure: string | undefined;
  const login = await conn.command(`LOGIN ${quoted(user)} ${quoted(pass)}`);
  const select = login === 'OK' ? await conn.command('SELECT INBOX') : login;
  if (select !== 'OK') failure = conn.closed ?? `LOGIN/SELECT answered ${select}`;
  let stopping = false;
  const timed = async (command: ProbeCommand, text: string): Promise<void> => {
    const start = performance.now();
    const status = await conn.command(text);
    if (status === 'CLOSED') return;
    samples.push({ command, ms: performance.now() - start });
    if (status !== 'OK') refused++;
  };
  const random = () => 1 + Math.floor(Math.random() * conn.exists);
  const loop = async (): Promise<void> => {
    const cycle: [ProbeCommand, () => string | undefined][] = [
      ['NOOP', () => 'NOOP'],
      ['UID FETCH', () => 'UID FETCH 1:* (FLAGS)'],
      ['FETCH HEADER', () => (conn.exists > 0 ? `FETCH ${random()} BODY.PEEK[HEADER]` : undefined)],
      ['UID SEARCH', () => 'UID SEARCH UNSEEN'],
      ['STORE', () => (conn.exists > 0 ? `STORE ${random()} +FLAGS (\\Seen)` : undefined)],
    ];
    while (failure === undefined && !stopping) {
      for (const [command, text] of cycle) {
        const t = text();
        if (t === undefined) continue;
        await timed(command, t);
        if (conn.closed !== undefined) {
          failure = conn.closed;
          return;
        }
        if (stopping) return;
        await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      }
    }
  };
  const running = loop();
  return {
    async stop(): Promise<ProbeResult> {
      stopping = true;
      await running;
      if (conn.closed === undefined) await conn.command('LOGOUT');
      conn.end();
      return { samples, refused, failure };
    },
  };
}
