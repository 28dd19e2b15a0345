// A raw ManageSieve client for the hostile tests: writes exactly what it is told, reads whole
// responses (lines up to OK/NO/BYE, literals by their length), and can STARTTLS.

import net from 'node:net';
import tls from 'node:tls';

export interface Reply {
  /** Every byte of the response, the final line included. */
  readonly raw: Buffer;
  /** The final line: OK ..., NO ..., BYE ... */
  readonly status: string;
}

export class RawSieve {
  socket: net.Socket;
  #buf = Buffer.alloc(0);
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.#listen(socket);
  }

  static async connect(port: number): Promise<RawSieve> {
    const s = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawSieve(s);
  }

  #listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, d]);
      this.#wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    s.on('error', () => {});
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  #more(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`connection closed; unread: ${this.#buf.toString()}`));
    return new Promise((r) => this.#waiters.push(r));
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next response (up to and including its OK/NO/BYE line). */
  async reply(): Promise<Reply> {
    let pos = 0;
    for (;;) {
      const lf = this.#buf.indexOf('\r\n', pos);
      if (lf < 0) {
        await this.#more();
        continue;
      }
      const line = this.#buf.subarray(pos, lf).toString('utf8');
      const lit = /\{(\d+)\}$/.exec(line);
      if (lit) {
        const end = lf + 2 + Number(lit[1]);
        while (this.#buf.length < end) await this.#more();
        pos = end;
        continue;
      }
      pos = lf + 2;
      if (/^(OK|NO|BYE)\b/.test(line)) {
        const raw = this.#buf.subarray(0, pos);
        this.#buf = this.#buf.subarray(pos);
        return { raw, status: line };
      }
    }
  }

  /** One line (a SASL challenge), without its CRLF. */
  async line(): Promise<string> {
    for (;;) {
      const lf = this.#buf.indexOf('\r\n');
      if (lf >= 0) {
        const line = this.#buf.subarray(0, lf).toString('utf8');
        this.#buf = this.#buf.subarray(lf + 2);
        return line;
      }
      await this.#more();
    }
  }

  async command(line: string | Buffer): Promise<Reply> {
    this.write(typeof line === 'string' ? `${line}\r\n` : line);
    return this.reply();
  }

  async startTls(): Promise<Reply> {
    return this.startTlsWith('STARTTLS\r\n');
  }

  /** Sends `bytes` (STARTTLS and whatever a test pipelines behind it), then the handshake. */
  async startTlsWith(bytes: string): Promise<Reply> {
    const r = await this.command(Buffer.from(bytes));
    if (!r.status.startsWith('OK')) throw new Error(r.status);
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket = secure;
    this.#listen(secure);
    return this.reply(); // RFC 5804 §2.2: the capabilities again
  }

  async login(user: string, password: string): Promise<Reply> {
    const b64 = Buffer.from(`\0${user}\0${password}`).toString('base64');
    return this.command(`AUTHENTICATE "PLAIN" "${b64}"`);
  }

  /** Resolves once the server closed the connection. */
  async closedByServer(): Promise<void> {
    while (!this.closed) await new Promise<void>((r) => this.#waiters.push(r));
  }

  close(): void {
    this.socket.destroy();
  }
}
