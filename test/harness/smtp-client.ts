import assert from 'node:assert/strict';
// A raw-socket SMTP client for byte-exact tests: sends exactly the bytes given and reads
// whole replies (multi-line replies are joined). Plain TCP, or upgraded with startTls().

import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  readonly code: number;
  readonly lines: readonly string[];
  /** The last line, e.g. "550 5.7.1 Relay access denied". */
  readonly text: string;
}

export class RawSmtp {
  #socket: net.Socket;
  #buf = '';
  #waiters: (() => void)[] = [];
  #closed = false;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** `localAddress` binds the client to another loopback address (127.0.0.2 ...), for tests
   *  about "another client address". */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawSmtp> {
    const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawSmtp(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  write(data: string | Buffer): void {
    this.#socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Reads one complete reply; rejects if the server closes first or after timeoutMs. */
  async read(timeoutMs = 5000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines: string[] = [];
      let pos = 0;
      for (;;) {
        const nl = this.#buf.indexOf('\r\n', pos);
        if (nl < 0) break;
        const line = this.#buf.slice(pos, nl);
        pos = nl + 2;
        lines.push(line);
        if (/^\d{3}( |$)/.test(line)) {
          this.#buf = this.#buf.slice(pos);
          return { code: Number(line.slice(0, 3)), lines, text: line };
        }
      }
      if (this.#closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.#buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for reply; have: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Reads one raw CRLF-terminated line (for IMAP tests). */
  async readRawLine(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nl = this.#buf.indexOf('\r\n');
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 2);
        return line;
      }
      if (this.#closed) throw new Error(`connection closed; unparsed: ${JSON.stringify(this.#buf)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for a line; have: ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a command line (CRLF added) and reads its reply. */
  async cmd(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  async startTls(servername = 'localhost'): Promise<tls.TLSSocket> {
    const r = await this.cmd('STARTTLS');
    if (r.code !== 220) throw new Error(`STARTTLS refused: ${r.text}`);
    this.#socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.#socket, servername, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.#socket = secure;
    this.#attach(secure);
    return secure;
  }

  /** Waits until the server closes the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** EHLO, MAIL, RCPT...; returns the replies (stops at the first failure). */
export async function envelope(c: RawSmtp, from: string, rcpts: readonly string[]): Promise<Reply[]> {
  const out: Reply[] = [];
  await c.read(); // greeting
  out.push(await c.cmd('EHLO client.example'));
  out.push(await c.cmd(`MAIL FROM:<${from}>`));
  for (const r of rcpts) out.push(await c.cmd(`RCPT TO:<${r}>`));
  return out;
}

/** One transaction on a fresh connection: the reply to the end of DATA, or the first refusal
 *  of the envelope. `data` is the message, CRLF line ends, without the final dot. */
export async function transaction(port: number, from: string, rcpts: readonly string[], data: string): Promise<Reply> {
  const c = await RawSmtp.connect(port);
  try {
    const replies = await envelope(c, from, rcpts);
    const refused = replies.find((r) => r.code >= 400);
    if (refused) return refused;
    const go = await c.cmd('DATA');
    if (go.code !== 354) return go;
    c.write(`${data}.\r\n`);
    return await c.read();
  } finally {
    c.close();
  }
}

/** A submission session as a mail client opens it: greeting, EHLO, STARTTLS (RFC 3207), EHLO
 *  again, AUTH PLAIN (RFC 4954), and MAIL FROM the user's own address; asserts each step. */
export async function authenticatedSubmission(
  port: number,
  user: string,
  password: string,
  localAddress?: string,
): Promise<RawSmtp> {
  const c = await RawSmtp.connect(port, '127.0.0.1', localAddress);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  await c.startTls();
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  const plain = Buffer.from(`\0${user}\0${password}`).toString('base64');
  assert.equal((await c.cmd(`AUTH PLAIN ${plain}`)).code, 235);
  assert.equal((await c.cmd(`MAIL FROM:<${user}>`)).code, 250);
  return c;
}
