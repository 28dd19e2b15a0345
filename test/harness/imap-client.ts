// A raw IMAP client for byte-exact tests: sends lines, collects everything up to the tagged
// reply of a command.

import { ImapFlow } from 'imapflow';
import { RawSmtp } from './smtp-client.ts';

export class RawImap {
  readonly #c: RawSmtp;
  #n = 0;
  /** How long to wait for each line (benchmarks on big mailboxes raise it). */
  timeoutMs = 5000;

  private constructor(c: RawSmtp) {
    this.#c = c;
  }

  static async connect(port: number, localAddress?: string): Promise<{ client: RawImap; greeting: string }> {
    const c = await RawSmtp.connect(port, '127.0.0.1', localAddress);
    const client = new RawImap(c);
    const greeting = await client.readLine();
    return { client, greeting };
  }

  write(data: string | Buffer): void {
    this.#c.write(data);
  }

  /** Reads one CRLF-terminated line (literals are not interpreted). */
  async readLine(timeoutMs = this.timeoutMs): Promise<string> {
    return this.#c.readRawLine(timeoutMs);
  }

  /** Sends `tag command` and returns all lines up to and including the tagged reply. */
  async cmd(command: string): Promise<string[]> {
    const tag = `t${++this.#n}`;
    this.write(`${tag} ${command}\r\n`);
    return this.until(tag);
  }

  async until(tag: string): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      lines.push(line);
      if (line.startsWith(`${tag} `)) return lines;
    }
  }

  /** Whether the server closed the connection. */
  get closed(): boolean {
    return this.#c.closed;
  }

  /** Waits until the server closes the connection (rejects after timeoutMs). */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return this.#c.waitClosed(timeoutMs);
  }

  close(): void {
    this.#c.close();
  }
}

/** Logs in, creates the mailbox `box`, APPENDs `messages` to it (line endings become CRLF, as
 *  imaptest sends its scripts' messages) and selects it. */
export async function selectNewMailbox(
  port: number,
  login: string,
  box: string,
  messages: readonly string[],
): Promise<RawImap> {
  const { client } = await RawImap.connect(port);
  const check = (lines: string[], what: string) => {
    if (!/^t?\w+ OK /.test(lines.at(-1) ?? '')) throw new Error(`${what}: ${lines.join(' | ')}`);
  };
  check(await client.cmd(`LOGIN ${login}`), 'LOGIN');
  check(await client.cmd(`CREATE ${box}`), 'CREATE');
  for (const [i, m] of messages.entries()) {
    const data = Buffer.from(m.replace(/\r?\n/g, '\r\n'), 'latin1');
    client.write(Buffer.concat([Buffer.from(`ap${i} APPEND ${box} {${data.length}+}\r\n`), data, Buffer.from('\r\n')]));
    check(await client.until(`ap${i}`), 'APPEND');
  }
  check(await client.cmd(`SELECT ${box}`), 'SELECT');
  return client;
}

/** imapflow, the independent IMAP client of the interop tests, logged in over STARTTLS on
 *  loopback (the test certificate is self-signed). */
export async function imapflowClient(port: number, user: string, pass = 'secret-password'): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
  await c.connect();
  return c;
}
